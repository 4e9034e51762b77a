import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { nodeHttp } from '../client/node-http.js';
import { formatAddress, type BindAddress } from './address.js';

export type Handler = (req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean>;

/** PEM serving certificate and key: the endpoint then speaks HTTPS only. */
export interface TlsMaterial {
  cert: string;
  key: string;
}

/** An HTTP(S) server for probes and metrics; answers 404 for whatever the handler does not take. */
export class HttpEndpoint {
  private server?: Server;

  constructor(
    private readonly handler: Handler,
    private readonly tls?: TlsMaterial,
  ) {}

  /** Listen; resolves with the bound address ("127.0.0.1:45678", "[::]:8080"). */
  async listen(bind: BindAddress): Promise<string> {
    const serve = (req: IncomingMessage, res: ServerResponse) => {
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
    };
    const server: Server = this.tls
      ? (createTlsServer({ cert: this.tls.cert, key: this.tls.key, minVersion: 'TLSv1.2' }, serve) as Server)
      : nodeHttp.createServer(serve);
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
