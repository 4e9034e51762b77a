/**
 * Package sharding: every replica works. Replicas join a ring by holding Leases, compute the
 * same consistent-hash ring, and each reconciles only the keys it owns; handover is fenced by
 * lease timing (docs/sharding.md).
 */
export * from './hash.js';
export * from './ring.js';
export * from './membership.js';
export * from './queue.js';
export * from './controller.js';
export * from './selector.js';
export * from './primary-shard.js';
