/**
 * `shellcheck scripts/*.sh` prints nothing. The test never passes without checking: when
 * shellcheck is not on PATH it takes Debian's package (the registry this project's machines
 * reach) with `apt-get download` and unpacks it with `dpkg-deb -x` into the user's cache, no
 * root needed; if that fails too, the test fails and says why.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';

const CACHE = join(homedir(), '.cache', 'ts-kcm', 'shellcheck');
const CACHED_BINARY = join(CACHE, 'usr', 'bin', 'shellcheck');

function runs(binary: string): boolean {
  return spawnSync(binary, ['--version']).status === 0;
}

/** A shellcheck that runs, or an Error saying why there is none. */
function findShellcheck(): string | Error {
  if (runs('shellcheck')) return 'shellcheck';
  if (existsSync(CACHED_BINARY) && runs(CACHED_BINARY)) return CACHED_BINARY;
  const work = mkdtempSync(join(tmpdir(), 'ts-kcm-shellcheck-'));
  try {
    const download = spawnSync('apt-get', ['download', 'shellcheck'], { cwd: work, encoding: 'utf8' });
    if (download.error || download.status !== 0)
      return new Error(
        `shellcheck is not installed and "apt-get download shellcheck" failed (${
          download.error?.message ?? download.stderr.trim()
        }): install it (apt-get install shellcheck) or run apt-get update first`,
      );
    const deb = readdirSync(work).find((f) => f.startsWith('shellcheck_') && f.endsWith('.deb'));
    if (!deb) return new Error(`apt-get download shellcheck left no .deb in ${work}`);
    mkdirSync(CACHE, { recursive: true });
    execFileSync('dpkg-deb', ['-x', join(work, deb), CACHE]);
    if (!runs(CACHED_BINARY))
      return new Error(`${CACHED_BINARY} from ${deb} does not run (its libraries: libffi8, libgmp10)`);
    return CACHED_BINARY;
  } catch (err) {
    return new Error(`could not unpack Debian's shellcheck: ${(err as Error).message}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

describe('scripts/*.sh', () => {
  it('shellcheck prints nothing', () => {
    const shellcheck = findShellcheck();
    if (shellcheck instanceof Error) throw shellcheck;
    const scripts = readdirSync('scripts')
      .filter((f) => f.endsWith('.sh'))
      .map((f) => `scripts/${f}`);
    expect(scripts.length).toBeGreaterThan(0);
    const result = spawnSync(shellcheck, scripts, { encoding: 'utf8' });
    expect({ status: result.status, output: result.stdout + result.stderr }).toEqual({
      status: 0,
      output: '',
    });
  }, 120_000);
});
