/**
 * Helpers for integration and e2e tests against the control plane globalSetup started.
 * Deliberately independent of lib/client: a bug there must not break the harness.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { constants } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { NODE_FLAGS } from '../../controllers/node-flags.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The built CLI; tests that spawn it need `npm run build` first. */
export const TS_KCM_MAIN = join(repoRoot, 'dist', 'controllers', 'main.js');
export const KUBECTL = process.env.KUBECTL ?? '/usr/bin/kubectl';

export function testKubeconfigPath(): string {
  const path = process.env.TS_KCM_TEST_KUBECONFIG;
  if (!path) {
    throw new Error(
      'TS_KCM_TEST_KUBECONFIG is not set: integration tests need the control plane from test/support/global-setup.ts ' +
        '(do not set TS_KCM_SKIP_CONTROLPLANE=1, and do not select only the unit project)',
    );
  }
  return path;
}

export function testKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(testKubeconfigPath());
  return kc;
}

/** A DNS-1123 label unique across the run: prefix + time + randomness, at most 63 characters. */
export function uniqueName(prefix: string): string {
  const suffix = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  const head = prefix
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .slice(0, 63 - suffix.length - 1);
  return `${head}-${suffix}`;
}

export async function createTestNamespace(prefix: string): Promise<string> {
  const name = uniqueName(prefix);
  const core = testKubeConfig().makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name, labels: { 'ts-kcm.test/namespace': 'true' } } } });
  return name;
}

/**
 * Deletes a test namespace without waiting: no namespace controller runs in the test control
 * plane, so it stays Terminating with its contents, which is harmless for a throwaway etcd.
 */
export async function deleteNamespace(ns: string): Promise<void> {
  const core = testKubeConfig().makeApiClient(CoreV1Api);
  try {
    await core.deleteNamespace({ name: ns });
  } catch (err) {
    if ((err as { code?: number }).code !== 404) throw err;
  }
}

export interface CommandResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** Runs a command to completion; never rejects on a non-zero exit (tests assert the code). */
export function runCommand(
  file: string,
  args: string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ stdout, stderr, code: code ?? (signal ? 128 : -1) });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** kubectl with the test kubeconfig; `input` feeds `-f -`. */
export function kubectl(args: string[], opts: { input?: string } = {}): Promise<CommandResult> {
  return runCommand(KUBECTL, ['--kubeconfig', testKubeconfigPath(), ...args], opts);
}

export interface WaitForOptions {
  timeoutMs?: number;
  intervalMs?: number;
  description?: string;
}

/**
 * Polls `fn` until it returns something other than undefined/false/null and resolves to that.
 * Thrown errors count as "not yet"; the last one is reported on timeout.
 */
export async function waitFor<T>(
  fn: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  opts: WaitForOptions = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const intervalMs = opts.intervalMs ?? 100;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value !== undefined && value !== null && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const why =
        lastError === undefined
          ? ''
          : `; last error: ${lastError instanceof Error ? lastError.message : String(lastError)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${opts.description ?? 'condition'}${why}`);
    }
    await sleep(intervalMs);
  }
}

export interface TsKcmProcess {
  proc: ChildProcess;
  /** stdout and stderr so far, interleaved as they arrived. */
  output(): string;
  /** Resolves with the match once the output matches; rejects on timeout or exit. */
  waitForOutput(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves to the exit code once the process ends by itself (128 + signal number if killed). */
  exited(): Promise<number>;
  /** Sends `signal` and resolves to the exit code (128 + signal number if killed by a signal). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number>;
  /** Whether it still runs (or how it ended) and its last output lines: for a failure's log. */
  describe(lines?: number): string;
}

export interface StartTsKcmOptions {
  /** Kubeconfig passed as --kubeconfig; default the test one; false passes none. */
  kubeconfig?: string | false;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of running) p.kill('SIGKILL');
});

/**
 * Spawns the built CLI as the image runs it (`node <NODE_FLAGS> dist/controllers/main.js ...args
 * --kubeconfig <test>`).
 */
export function startTsKcm(args: string[], opts: StartTsKcmOptions = {}): TsKcmProcess {
  if (!existsSync(TS_KCM_MAIN)) throw new Error(`${TS_KCM_MAIN} is missing: run "npm run build" first`);
  const kubeconfig = opts.kubeconfig === undefined ? testKubeconfigPath() : opts.kubeconfig;
  const fullArgs = [
    ...NODE_FLAGS,
    TS_KCM_MAIN,
    ...args,
    ...(kubeconfig === false ? [] : ['--kubeconfig', kubeconfig]),
  ];
  const proc = spawn(process.execPath, fullArgs, {
    cwd: opts.cwd ?? repoRoot,
    env: opts.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(proc);
  let out = '';
  const listeners = new Set<() => void>();
  const onData = (d: string): void => {
    out += d;
    for (const l of [...listeners]) l();
  };
  proc.stdout?.setEncoding('utf8').on('data', onData);
  proc.stderr?.setEncoding('utf8').on('data', onData);
  const exited = new Promise<number>((resolve) => {
    proc.on('close', (code, signal) => {
      running.delete(proc);
      for (const l of [...listeners]) l();
      resolve(code ?? 128 + (signal ? constants.signals[signal] : 0));
    });
  });
  const isDone = (): boolean => proc.exitCode !== null || proc.signalCode !== null;

  return {
    proc,
    output: () => out,
    exited: () => exited,
    waitForOutput(re, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () =>
            finish(
              new Error(`timed out after ${timeoutMs} ms waiting for ${re} in ts-kcm output:\n${tail(out)}`),
            ),
          timeoutMs,
        );
        const check = (): void => {
          const m = out.match(re);
          if (m) finish(undefined, m);
          else if (isDone()) finish(new Error(`ts-kcm exited before printing ${re}; output:\n${tail(out)}`));
        };
        const finish = (err?: Error, m?: RegExpMatchArray): void => {
          clearTimeout(timer);
          listeners.delete(check);
          if (err) reject(err);
          else resolve(m as RegExpMatchArray);
        };
        listeners.add(check);
        check();
      });
    },
    describe(lines = 40) {
      const state = isDone()
        ? `exited (code ${proc.exitCode}, signal ${proc.signalCode})`
        : `still running (pid ${proc.pid})`;
      return `ts-kcm ${state}; its last ${lines} output lines:\n${tail(out, lines)}\n`;
    },
    async stop(signal = 'SIGINT', timeoutMs = 30_000) {
      if (!isDone()) proc.kill(signal);
      const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

function tail(text: string, lines = 40): string {
  return text.split('\n').slice(-lines).join('\n');
}
