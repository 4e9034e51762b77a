/** Health probes for etcd and kube-apiserver, and the poll loop that waits on them. */
import { get as httpsGet } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';

/** Poll interval from the spec: short enough that start-up time is not padded by waiting. */
export const READY_POLL_INTERVAL_MS = 100;
const PROBE_TIMEOUT_MS = 2_000;

/** etcd answers {"health":"true"} on /health once it has a leader (immediately for one member). */
export async function etcdHealthy(clientURL: string): Promise<boolean> {
  try {
    const res = await fetch(`${clientURL}/health`, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
    if (!res.ok) return false;
    const body = (await res.json()) as { health?: unknown };
    return body.health === 'true';
  } catch {
    return false;
  }
}

/**
 * kube-apiserver's /readyz with the admin token. The serving certificate is not checked:
 * this is our own child on loopback, and its certificate may not exist yet on the first probes.
 */
export function apiserverReady(apiserverURL: string, token: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = httpsGet(
      `${apiserverURL}/readyz`,
      {
        headers: { Authorization: `Bearer ${token}` },
        rejectUnauthorized: false,
        timeout: PROBE_TIMEOUT_MS,
        agent: false, // no keep-alive socket left holding the event loop open
      },
      (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      },
    );
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
  });
}

export type PollOutcome = 'ready' | 'exited' | 'timeout';

/** Polls `probe` until it succeeds, the process dies (`alive` false) or the timeout passes. */
export async function pollReady(
  probe: () => Promise<boolean>,
  alive: () => boolean,
  timeoutMs: number,
): Promise<PollOutcome> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!alive()) return 'exited';
    if (await probe()) return 'ready';
    if (Date.now() >= deadline) return 'timeout';
    await sleep(READY_POLL_INTERVAL_MS);
  }
}
