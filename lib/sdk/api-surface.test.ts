import { describe, expect, it } from '@jest/globals';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { apiSurface } from './api-surface.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const snapshot = join(root, 'docs', 'api-snapshot.txt');

describe('the public API surface (ts-kcm, ts-kcm/testing)', () => {
  it('matches docs/api-snapshot.txt (npm run api:update after a deliberate change)', () => {
    const now = apiSurface(root);
    if (process.env.TS_KCM_UPDATE_API_SNAPSHOT === '1') writeFileSync(snapshot, now);
    const committed = readFileSync(snapshot, 'utf8');
    const missing = committed.split('\n').filter((l) => l && !now.includes(`${l}\n`));
    expect(missing).toEqual([]); // a public name or signature disappeared or changed
    expect(now).toEqual(committed); // something was added: record it in the snapshot and docs/api.md
  }, 60_000);
});
