import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { formatAddress, type BindAddress } from './address.js';

export type Handler = (req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean>;

/** A plain HTTP server for probes and metrics; answers 404 for whatever the handler does not take. */
export class HttpEndpoint {
  private server?: Server;

  constructor(private readonly handler: Handler) {}

  /** Listen; resolves with the bound address ("127.0.0.1:45678", "[::]:8080"). */
  async listen(bind: BindAddress): Promise<string> {
    const server = createServer((req, res) => {
      Promise.resolve(this.handler(req, res))
        .then((handled) => {
          if (!handled) {
            res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
            res.end('404 page not found\n');
          }
        })
        .catch((err: unknown) => {
          if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
          res.end(`${err instanceof Error ? err.message : String(err)}\n`);
        });
    });
    // Probes must not keep a shutting-down process alive.
    server.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(bind.port, bind.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    const a = server.address() as AddressInfo;
    return formatAddress(a.address, a.port);
  }

  async close(): Promise<void> {
    const s = this.server;
    if (!s) return;
    this.server = undefined;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
