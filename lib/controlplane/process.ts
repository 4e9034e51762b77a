/**
 * Detached component processes: each runs in its own process group with its output in a
 * log file, so `controlplane up` can exit while they keep running and `down` (possibly a
 * different process) can find and end them by pid.
 */
import { spawn } from 'node:child_process';
import { closeSync, fstatSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * How long a component gets to exit after SIGTERM before SIGKILL. Idle components exit in
 * about a second, but kube-apiserver waits up to 60 s for open watch connections to close,
 * which is pointless for a throwaway control plane whose state lives in etcd.
 */
export const DEFAULT_TERMINATE_TIMEOUT_MS = 5_000;

export function spawnDetached(binary: string, args: string[], logFile: string, cwd: string): number {
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(binary, args, { cwd, detached: true, stdio: ['ignore', fd, fd] });
    if (child.pid === undefined) throw new Error(`ts-kcm: failed to start ${binary}`);
    child.on('error', () => {}); // reported through isRunning and the log instead
    child.unref();
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

/**
 * True while the pid is a live (not zombie) process running `binary`. Checking the command
 * line guards against a recycled pid after a reboot or a long-dead control plane.
 */
export function isRunning(pid: number | null | undefined, binary: string): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
  } catch {
    // ESRCH: gone. EPERM: exists but belongs to someone else, so not our component.
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state === 'Z' || state === 'X') {
      // A killed multi-threaded process (a Go binary) shows its leader as a zombie while its
      // other threads are still exiting, and those still hold its files and listening
      // sockets: it is gone only once the leader is its last thread.
      const threads = /^Threads:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      return threads !== null && Number(threads[1]) > 1;
    }
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? '';
    return basename(cmdline) === basename(binary);
  } catch {
    // No procfs (not Linux): the signal-0 probe is all we have.
    return true;
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

/** SIGTERM the component's process group, then SIGKILL it if it outlives the timeout (0: SIGKILL at once). */
export async function terminate(
  pid: number,
  binary: string,
  timeoutMs: number = DEFAULT_TERMINATE_TIMEOUT_MS,
): Promise<void> {
  if (!isRunning(pid, binary)) return;
  if (timeoutMs > 0) signalGroup(pid, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (isRunning(pid, binary) && Date.now() < deadline) await sleep(50);
  signalGroup(pid, 'SIGKILL');
  // SIGKILL cannot be ignored, but a process stuck in the kernel (D state) may take a moment.
  const killDeadline = Date.now() + timeoutMs + 10_000;
  while (isRunning(pid, binary)) {
    if (Date.now() >= killDeadline)
      throw new Error(`ts-kcm: ${basename(binary)} (pid ${pid}) survived SIGKILL`);
    await sleep(20);
  }
}

/** For exit hooks, where nothing asynchronous runs any more. */
export function killNow(pid: number | null | undefined, binary: string): void {
  if (pid && isRunning(pid, binary)) signalGroup(pid, 'SIGKILL');
}

export function logTail(logFile: string, lines = 40): string {
  try {
    // The last 256 KiB at most: a component's log can outgrow what one string may hold.
    const size = statSync(logFile).size;
    const all = readLogRange(logFile, Math.max(0, size - 256 * 1024))
      .trimEnd()
      .split('\n');
    return all.slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** A log file from byte `from` on, at most `maxBytes` of it (the start of that range). */
export function readLogRange(logFile: string, from: number, maxBytes = 4 * 1024 * 1024): string {
  const fd = openSync(logFile, 'r');
  try {
    const length = Math.max(0, Math.min(maxBytes, fstatSync(fd).size - from));
    const buf = Buffer.alloc(length);
    const read = readSync(fd, buf, 0, length, from);
    return buf.subarray(0, read).toString('utf8');
  } finally {
    closeSync(fd);
  }
}
