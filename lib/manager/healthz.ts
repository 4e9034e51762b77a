/**
 * /healthz, /livez and /readyz in the manner of kube's healthz package: every check has a
 * name; `?verbose` lists `[+]name ok` / `[-]name failed: reason withheld` (reasons go to the
 * log, not to whoever can reach the port); `?exclude=name` skips a check; `/readyz/<name>`
 * runs one check. 200 "ok" when all pass, 500 otherwise.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { errorMessage, type Logger } from '../log/index.js';

export interface HealthCheck {
  name: string;
  /** undefined: healthy. */
  check(): Error | undefined;
  /** A note for `?verbose` on a passing check (e.g. a controller waiting for an API not served). */
  detail?(): string | undefined;
}

export const ping: HealthCheck = { name: 'ping', check: () => undefined };

export class HealthChecks {
  constructor(
    private readonly groups: Record<string, HealthCheck[]>,
    private readonly logger: Logger,
  ) {}

  /** Handles /<group>[/<check>]; false if the path is not ours. */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const [, group, only, extra] = url.pathname.split('/');
    const checks = group !== undefined ? this.groups[group] : undefined;
    if (!checks || extra !== undefined) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      reply(res, 405, 'method not allowed\n');
      return true;
    }
    if (only) {
      const c = checks.find((x) => x.name === only);
      if (!c) return false;
      const err = this.run(group!, c);
      reply(res, err ? 500 : 200, err ? 'internal server error: reason withheld\n' : 'ok');
      return true;
    }
    const excluded = new Set(url.searchParams.getAll('exclude').flatMap((e) => e.split(',')));
    const lines: string[] = [];
    let failed = false;
    for (const c of checks) {
      if (excluded.has(c.name)) {
        lines.push(`[+]${c.name} excluded: ok`);
        continue;
      }
      const err = this.run(group!, c);
      failed ||= err !== undefined;
      const note = err ? undefined : c.detail?.();
      lines.push(err ? `[-]${c.name} failed: reason withheld` : `[+]${c.name} ok${note ? ` (${note})` : ''}`);
    }
    if (failed) {
      reply(res, 500, `${lines.join('\n')}\n${group} check failed\n`);
    } else if (url.searchParams.has('verbose')) {
      reply(res, 200, `${lines.join('\n')}\n${group} check passed\n`);
    } else {
      reply(res, 200, 'ok');
    }
    return true;
  }

  private run(group: string, c: HealthCheck): Error | undefined {
    let err: Error | undefined;
    try {
      err = c.check();
    } catch (thrown) {
      err = thrown instanceof Error ? thrown : new Error(String(thrown));
    }
    if (err) this.logger.info(`${group} check failed`, { check: c.name, err: errorMessage(err) });
    return err;
  }
}

function reply(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' });
  res.end(body);
}
