import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';

const present = spawnSync('shellcheck', ['--version']).status === 0;

describe('scripts/*.sh', () => {
  (present ? it : it.skip)('shellcheck prints nothing', () => {
    const scripts = readdirSync('scripts')
      .filter((f) => f.endsWith('.sh'))
      .map((f) => `scripts/${f}`);
    expect(execFileSync('shellcheck', scripts, { encoding: 'utf8' })).toBe('');
  });
});
