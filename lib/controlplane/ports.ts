import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';

/**
 * Distinct free loopback ports, all held open at once so the same one is not handed out
 * twice. They are drawn at random from below the kernel's ephemeral range: a port from
 * inside it (what `listen(0)` gives) can be taken by any outgoing connection while a
 * component is down, which broke restarting kube-apiserver on its old port. Another
 * process may still bind one before our component does; the caller retries the whole
 * start when that race happens.
 */
export async function freePorts(count: number): Promise<number[]> {
  const [low, high] = candidateRange();
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let attempt = 0; ports.length < count && attempt < 500; attempt++) {
      const port = low + Math.floor(Math.random() * (high - low + 1));
      if (ports.includes(port)) continue;
      const server = await listen(port);
      if (server) {
        servers.push(server);
        ports.push(port);
      }
    }
    // A crowded range: fall back to ports the kernel picks.
    while (ports.length < count) {
      const server = (await listen(0))!;
      servers.push(server);
      ports.push((server.address() as { port: number }).port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

/** Ports below the ephemeral range (Linux default 32768-60999), above the well-known ones. */
function candidateRange(): [number, number] {
  let ephemeralLow = 32768;
  try {
    const [lo] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
    if (lo && Number.isFinite(lo) && lo > 12000) ephemeralLow = lo;
  } catch {
    // not Linux: keep the default
  }
  return [10000, ephemeralLow - 1];
}

function listen(port: number): Promise<Server | undefined> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (port !== 0 && (err.code === 'EADDRINUSE' || err.code === 'EACCES')) resolve(undefined);
      else reject(err);
    });
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}
