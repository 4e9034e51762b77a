/**
 * A bind address as controller-runtime's --metrics-bind-address / --health-probe-bind-address
 * take it: "host:port", ":port" (all interfaces), "[::1]:port", or "0" to disable the server.
 * Port 0 with a host asks the kernel for a free port (tests read the bound one from the log).
 */
export interface BindAddress {
  /** undefined: all interfaces. */
  host?: string;
  port: number;
}

export function parseBindAddress(text: string): BindAddress | undefined {
  const s = text.trim();
  if (s === '0') return undefined;
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(s);
  if (!m)
    throw new Error(`invalid bind address "${text}": use host:port, :port, [ipv6]:port, or 0 to disable`);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`invalid bind address "${text}": port out of range`);
  const host = m[1] ?? m[2];
  return host ? { host, port } : { port };
}

/** "host:port" for logs, bracketing IPv6. */
export function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
