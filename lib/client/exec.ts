/**
 * Exec credential plugins (client.authentication.k8s.io ExecCredential), run the way
 * client-go runs them: one run at a time however many requests wait (single flight), the
 * answer kept until its expirationTimestamp, and run again after a 401 with that answer.
 * What the plugin prints never goes into an error message: it holds the credential.
 */
import { spawn } from 'node:child_process';

export interface ExecConfig {
  command: string;
  args?: string[] | null;
  env?: { name: string; value: string }[] | null;
  apiVersion?: string;
}

export interface ExecCredential {
  token?: string;
  cert?: string;
  key?: string;
  /** Wall-clock ms (the plugin's expirationTimestamp); undefined: valid until a 401. */
  expiresAt?: number;
}

export class ExecCredentialSource {
  private current?: ExecCredential;
  private running?: Promise<ExecCredential>;
  /** Plugin runs so far (tests assert single flight). */
  runs = 0;

  constructor(
    private readonly config: ExecConfig,
    private readonly wallNow: () => number = Date.now,
  ) {}

  get(): Promise<ExecCredential> {
    const c = this.current;
    if (c && (c.expiresAt === undefined || c.expiresAt > this.wallNow())) return Promise.resolve(c);
    this.running ??= this.run().finally(() => (this.running = undefined));
    return this.running;
  }

  /** After a 401 with `used`: forget it (unless a newer one already replaced it). */
  invalidate(used: ExecCredential | undefined): void {
    if (used === undefined || this.current === used) this.current = undefined;
  }

  private async run(): Promise<ExecCredential> {
    this.runs++;
    const apiVersion = this.config.apiVersion ?? 'client.authentication.k8s.io/v1';
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const e of this.config.env ?? []) env[e.name] = e.value;
    env.KUBERNETES_EXEC_INFO = JSON.stringify({
      apiVersion,
      kind: 'ExecCredential',
      spec: { interactive: false },
    });
    const what = `exec plugin ${this.config.command}`;
    const stdout = await new Promise<string>((resolve, reject) => {
      const child = spawn(this.config.command, this.config.args ?? [], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
      child.on('error', (e) => reject(new Error(`${what}: ${e.message}`)));
      child.on('close', (code) =>
        code === 0 ? resolve(out) : reject(new Error(`${what} exited ${code}: ${err.trim().slice(-500)}`)),
      );
    });
    let parsed: { apiVersion?: string; kind?: string; status?: Record<string, unknown> };
    try {
      parsed = JSON.parse(stdout) as typeof parsed;
    } catch {
      throw new Error(`${what}: output is not JSON`); // never echo it: it may hold a token
    }
    const s = parsed?.status;
    if (parsed?.kind !== 'ExecCredential' || typeof s !== 'object' || s === null)
      throw new Error(`${what}: output is not an ExecCredential with a status`);
    if (parsed.apiVersion !== apiVersion)
      throw new Error(`${what}: answered ${String(parsed.apiVersion)}, asked for ${apiVersion}`);
    const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
    const cred: ExecCredential = {
      token: str(s.token),
      cert: str(s.clientCertificateData),
      key: str(s.clientKeyData),
    };
    if (!cred.token && !(cred.cert && cred.key))
      throw new Error(`${what}: status has neither a token nor a client certificate and key`);
    const exp = str(s.expirationTimestamp);
    if (exp !== undefined) cred.expiresAt = Date.parse(exp);
    this.current = cred;
    return cred;
  }
}
