/**
 * Delegated authentication and authorization for the secure metrics endpoint, as
 * kube-controller-manager's secure port does it (k8s.io/apiserver/pkg/server/options
 * authentication.go and authorization.go): the bearer token is checked with a TokenReview,
 * the user it names with a SubjectAccessReview for the request's non-resource path and verb.
 * Answers are cached for 10 s (allowed and denied alike, upstream's defaults) so a scrape
 * every few seconds costs no apiserver round trip.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { KubeObject } from '../api/index.js';
import type { KubeClient, ResourceRef } from '../client/index.js';
import { RealClock, type Clock } from '../clock/index.js';

const TOKEN_REVIEWS: ResourceRef = {
  group: 'authentication.k8s.io',
  version: 'v1',
  resource: 'tokenreviews',
  kind: 'TokenReview',
  namespaced: false,
};

const SUBJECT_ACCESS_REVIEWS: ResourceRef = {
  group: 'authorization.k8s.io',
  version: 'v1',
  resource: 'subjectaccessreviews',
  kind: 'SubjectAccessReview',
  namespaced: false,
};

export const DELEGATED_AUTH_CACHE_TTL_MS = 10_000;

export interface UserInfo {
  username: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
}

interface TokenReview extends KubeObject {
  spec: { token: string };
  status?: { authenticated?: boolean; user?: UserInfo; error?: string };
}

interface SubjectAccessReview extends KubeObject {
  spec: {
    user: string;
    uid?: string;
    groups?: string[];
    extra?: Record<string, string[]>;
    nonResourceAttributes: { path: string; verb: string };
  };
  status?: { allowed?: boolean; denied?: boolean; reason?: string };
}

export type AuthDecision =
  { allowed: true; user: UserInfo } | { allowed: false; status: 401 | 403; message: string };

interface Cached<T> {
  value: T;
  until: number;
}

export class DelegatedAuth {
  private readonly clock: Clock;
  private readonly tokens = new Map<string, Cached<UserInfo | undefined>>();
  private readonly decisions = new Map<string, Cached<boolean>>();
  private readonly ttlMs: number;

  constructor(
    private readonly client: KubeClient,
    opts: { clock?: Clock; ttlMs?: number } = {},
  ) {
    this.clock = opts.clock ?? new RealClock();
    this.ttlMs = opts.ttlMs ?? DELEGATED_AUTH_CACHE_TTL_MS;
  }

  /** Decides one request: 401 without a valid bearer token, 403 when RBAC does not allow it. */
  async check(req: IncomingMessage, path: string): Promise<AuthDecision> {
    const header = req.headers.authorization ?? '';
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m?.[1]) return { allowed: false, status: 401, message: 'Unauthorized' };
    const user = await this.authenticate(m[1]);
    if (!user) return { allowed: false, status: 401, message: 'Unauthorized' };
    const verb = (req.method ?? 'GET').toLowerCase() === 'head' ? 'get' : (req.method ?? 'GET').toLowerCase();
    if (!(await this.authorize(user, path, verb))) {
      return {
        allowed: false,
        status: 403,
        message: `Forbidden: user "${user.username}" cannot ${verb} path "${path}"`,
      };
    }
    return { allowed: true, user };
  }

  private async authenticate(token: string): Promise<UserInfo | undefined> {
    // Keyed by a digest: the cache never holds a token.
    const key = createHash('sha256').update(token).digest('hex');
    const hit = this.fresh(this.tokens, key);
    if (hit) return hit.value;
    const review = await this.client.resource<TokenReview>(TOKEN_REVIEWS).create({
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenReview',
      metadata: {},
      spec: { token },
    });
    const user = review.status?.authenticated ? review.status.user : undefined;
    this.remember(this.tokens, key, user);
    return user;
  }

  private async authorize(user: UserInfo, path: string, verb: string): Promise<boolean> {
    const key = JSON.stringify([user.username, user.uid, user.groups, user.extra, path, verb]);
    const hit = this.fresh(this.decisions, key);
    if (hit) return hit.value;
    const review = await this.client.resource<SubjectAccessReview>(SUBJECT_ACCESS_REVIEWS).create({
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      metadata: {},
      spec: {
        user: user.username,
        ...(user.uid ? { uid: user.uid } : {}),
        ...(user.groups ? { groups: user.groups } : {}),
        ...(user.extra ? { extra: user.extra } : {}),
        nonResourceAttributes: { path, verb },
      },
    });
    const allowed = review.status?.allowed === true;
    this.remember(this.decisions, key, allowed);
    return allowed;
  }

  private fresh<T>(cache: Map<string, Cached<T>>, key: string): Cached<T> | undefined {
    const hit = cache.get(key);
    if (hit && hit.until > this.clock.monotonicNow()) return hit;
    if (hit) cache.delete(key);
    return undefined;
  }

  private remember<T>(cache: Map<string, Cached<T>>, key: string, value: T): void {
    // Bounded: expired entries go first; a flood of distinct tokens cannot grow it forever.
    if (cache.size >= 1024) {
      const now = this.clock.monotonicNow();
      for (const [k, v] of cache) if (v.until <= now) cache.delete(k);
      if (cache.size >= 1024) cache.clear();
    }
    cache.set(key, { value, until: this.clock.monotonicNow() + this.ttlMs });
  }
}
