/** Stops the control plane globalSetup started (and only that one). */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { registerTypeScriptHooks } from './ts-loader.mjs';

/** Same value as global-setup's OWNED_ENV; not imported, as Node (not jest) loads this file. */
const OWNED_ENV = 'TS_KCM_TEST_CONTROLPLANE_OWNED';

export default async function globalTeardown(): Promise<void> {
  const dir = process.env.TS_KCM_TEST_DIR;
  if (process.env[OWNED_ENV] !== '1' || !dir) return;
  if (process.env.TS_KCM_KEEP_CONTROLPLANE === '1') {
    process.stderr.write(`ts-kcm: keeping the test control plane in ${dir} (TS_KCM_KEEP_CONTROLPLANE=1)\n`);
    return;
  }
  if (existsSync(join(dir, 'state.json'))) {
    registerTypeScriptHooks();
    const { ControlPlane } = await import('../../lib/controlplane/index.js');
    await ControlPlane.load(dir).stop();
  }
  delete process.env[OWNED_ENV];
}
