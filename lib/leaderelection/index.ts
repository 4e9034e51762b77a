/**
 * Package leaderelection: coordination.k8s.io/v1 Lease leader election with client-go's
 * algorithm and defaults, so several ts-kcm replicas run with exactly one doing work.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';

export * from './elector.js';
export type { LeaderElectionRecord } from './record.js';

/** kube-controller-manager's identity scheme: `<hostname>_<uuid>`, unique per process. */
export function newIdentity(): string {
  return `${hostname()}_${randomUUID()}`;
}
