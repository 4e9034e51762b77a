/**
 * A ServiceAccount's bearer token from the TokenRequest API, renewed before it expires: what
 * kube-controller-manager's --use-service-account-credentials gives each controller
 * (k8s.io/kubernetes/pkg/controller/client_builder_dynamic.go). The manager's own client
 * mints the token; the controller's client presents it, so the apiserver authorizes and
 * audits each controller as itself.
 */
import { RealClock, type Clock } from '../clock/index.js';
import { isAlreadyExists } from './errors.js';
import type { TokenSource } from './connection.js';
import type { KubeClient, ResourceRef } from './types.js';

const SERVICE_ACCOUNTS: ResourceRef = {
  group: '',
  version: 'v1',
  resource: 'serviceaccounts',
  kind: 'ServiceAccount',
  namespaced: true,
};

/** One hour, as kube-controller-manager asks for its controllers' tokens. */
export const SERVICE_ACCOUNT_TOKEN_SECONDS = 3600;
/** Renew once this much of a token's life has passed (client-go renews at 80 %). */
const RENEW_AT = 0.8;

export interface ServiceAccountTokenOptions {
  /** The client that mints tokens (needs create on serviceaccounts/token, get on serviceaccounts). */
  client: KubeClient;
  namespace: string;
  name: string;
  /** Create the ServiceAccount when it does not exist (needs create on serviceaccounts). */
  createIfMissing?: boolean;
  expirationSeconds?: number;
  clock?: Clock;
}

export class ServiceAccountTokenSource implements TokenSource {
  private readonly clock: Clock;
  private current?: { token: string; renewAt: number };
  private inflight?: Promise<string>;

  constructor(private readonly opts: ServiceAccountTokenOptions) {
    this.clock = opts.clock ?? new RealClock();
  }

  /** The user the apiserver will see. */
  get username(): string {
    return `system:serviceaccount:${this.opts.namespace}:${this.opts.name}`;
  }

  token(): Promise<string> {
    if (this.current && this.clock.monotonicNow() < this.current.renewAt) {
      return Promise.resolve(this.current.token);
    }
    // Single flight: concurrent requests at renewal share one TokenRequest.
    this.inflight ??= this.mint().finally(() => (this.inflight = undefined));
    return this.inflight;
  }

  invalidate(): void {
    this.current = undefined;
  }

  private async mint(): Promise<string> {
    const { client, namespace, name } = this.opts;
    const seconds = this.opts.expirationSeconds ?? SERVICE_ACCOUNT_TOKEN_SECONDS;
    const started = this.clock.monotonicNow();
    let res = await this.request(seconds);
    if (res.status === 404 && this.opts.createIfMissing) {
      try {
        await client.resource(SERVICE_ACCOUNTS).create({
          apiVersion: 'v1',
          kind: 'ServiceAccount',
          metadata: { name, namespace },
        });
      } catch (err) {
        if (!isAlreadyExists(err)) throw err; // another replica created it meanwhile
      }
      res = await this.request(seconds);
    }
    if (res.status !== 201 && res.status !== 200) {
      throw new Error(
        `ts-kcm: cannot get a token for ServiceAccount ${namespace}/${name} (TokenRequest answered ${res.status}): ${res.body.slice(0, 300)}`,
      );
    }
    const parsed = JSON.parse(res.body) as { status?: { token?: string; expirationTimestamp?: string } };
    const token = parsed.status?.token;
    if (!token) throw new Error(`ts-kcm: TokenRequest for ${namespace}/${name} returned no token`);
    // The server may shorten the lifetime; renew relative to what it granted.
    const granted = parsed.status?.expirationTimestamp
      ? Math.max(0, Date.parse(parsed.status.expirationTimestamp) - this.clock.now())
      : seconds * 1000;
    const lifetime = Math.min(granted, seconds * 1000);
    this.current = { token, renewAt: started + lifetime * RENEW_AT };
    return token;
  }

  private request(expirationSeconds: number): Promise<{ status: number; body: string }> {
    const { client, namespace, name } = this.opts;
    return client.requestRaw(
      'POST',
      `/api/v1/namespaces/${encodeURIComponent(namespace)}/serviceaccounts/${encodeURIComponent(name)}/token`,
      { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds } },
    );
  }
}
