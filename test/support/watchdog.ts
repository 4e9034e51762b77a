/**
 * A tiny detached process that outlives jest only to clean up after it: when the jest
 * process disappears without running globalTeardown (Ctrl-C, SIGKILL, crash), it kills the
 * control plane's process groups and removes its directory. It exits by itself once the
 * control plane's state.json is gone (normal teardown).
 */
import { spawn } from 'node:child_process';

// Plain JavaScript run with `node -e`: it must not depend on jest's TypeScript transform.
const WATCHDOG_SOURCE = `
const fs = require('node:fs');
const path = require('node:path');
const [parentPid, dir] = process.argv.slice(1).map((v, i) => (i === 0 ? Number(v) : v));
const stateFile = path.join(dir, 'state.json');
function parentAlive() { try { process.kill(parentPid, 0); return true; } catch { return false; } }
setInterval(() => {
  if (!fs.existsSync(stateFile)) process.exit(0);
  if (parentAlive()) return;
  try {
    const state = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
    for (const c of Object.values(state.components)) {
      if (c && c.pid) { try { process.kill(-c.pid, 'SIGKILL'); } catch {} }
    }
  } catch {}
  fs.rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}, 1000);
`;

/** Watches `parentPid` once a second, so cleanup happens about a second after jest dies. */
export function startWatchdog(dir: string, parentPid: number = process.pid): void {
  const child = spawn(process.execPath, ['-e', WATCHDOG_SOURCE, String(parentPid), dir], {
    detached: true,
    stdio: 'ignore',
  });
  child.unref();
}
