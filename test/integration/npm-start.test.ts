/**
 * `npm start` and Ctrl-C, the way a terminal delivers it: SIGINT to the whole foreground
 * process group, so npm and ts-kcm both receive it and npm forwards another copy. ts-kcm
 * must shut down gracefully (not treat npm's copy as a second, "exit now" signal) and npm
 * must exit 0 (not 130, which it reports when a shell between it and node dies).
 */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from '@jest/globals';
import { testKubeconfigPath, waitFor } from '../support/cluster.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

describe('npm start', () => {
  it('reaches "caches synced" and exits 0 on Ctrl-C', async () => {
    // --ignore-scripts skips prestart's build: npm test's pretest already built dist/.
    const child = spawn(
      'npm',
      [
        'run',
        'start',
        '--ignore-scripts',
        '--',
        '--kubeconfig',
        testKubeconfigPath(),
        '--controllers=resourceclaim-controller',
        '--leader-elect=false',
        '--metrics-bind-address=127.0.0.1:0',
        '--health-probe-bind-address=127.0.0.1:0',
      ],
      { cwd: repoRoot, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('exit', (code, signal) => resolve({ code, signal })),
    );
    try {
      await waitFor(() => output.includes('"message":"caches synced"'), {
        timeoutMs: 60_000,
        intervalMs: 100,
        description: 'caches synced',
      });
      process.kill(-child.pid!, 'SIGINT'); // the terminal's Ctrl-C: the whole process group
      expect(await exited).toEqual({ code: 0, signal: null });
      expect(output).toContain('"message":"controller manager stopped"');
      expect(output).not.toContain('second signal');
    } finally {
      try {
        process.kill(-child.pid!, 'SIGKILL'); // whatever is left of the group
      } catch {
        // already gone
      }
    }
  }, 120_000);
});
