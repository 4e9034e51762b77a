/**
 * Just enough X.509 for a local control plane's client CA and admin client certificate (the
 * credential a kind kubeconfig carries) and for a self-signed serving certificate of the
 * secure metrics endpoint, without openssl or a dependency:
 * Node's crypto signs and exports keys but cannot issue certificates, so the DER of the
 * certificate is written here (RFC 5280; ECDSA P-256 with SHA-256).
 */
import {
  createHash,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  type KeyObject,
} from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';

// --- DER ---------------------------------------------------------------------------------

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
}

const seq = (...items: Buffer[]) => tlv(0x30, Buffer.concat(items));
const set = (...items: Buffer[]) => tlv(0x31, Buffer.concat(items));
const explicit = (n: number, body: Buffer) => tlv(0xa0 | n, body);
const octets = (body: Buffer) => tlv(0x04, body);
const utf8 = (s: string) => tlv(0x0c, Buffer.from(s, 'utf8'));
const bool = (v: boolean) => tlv(0x01, Buffer.from([v ? 0xff : 0x00]));

function integer(bytes: Buffer): Buffer {
  let b = bytes;
  while (b.length > 1 && b[0] === 0 && (b[1] ?? 0) < 0x80) b = b.subarray(1);
  if ((b[0] ?? 0) >= 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return tlv(0x02, b);
}

function bitString(body: Buffer, unusedBits = 0): Buffer {
  return tlv(0x03, Buffer.concat([Buffer.from([unusedBits]), body]));
}

function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const out: number[] = [40 * (parts[0] ?? 0) + (parts[1] ?? 0)];
  for (const p of parts.slice(2)) {
    const chunk: number[] = [p & 0x7f];
    for (let v = Math.floor(p / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

/** UTCTime until 2049, GeneralizedTime after (RFC 5280 section 4.1.2.5). */
function time(d: Date): Buffer {
  const iso = d.toISOString(); // 2026-12-02T15:39:44.123Z
  const digits = iso.slice(0, 19).replace(/[-:T]/g, '') + 'Z'; // 20261202153944Z
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(digits.slice(2))) : tlv(0x18, Buffer.from(digits));
}

// --- certificates ------------------------------------------------------------------------

const OID = {
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  ecdsaWithSHA256: '1.2.840.10045.4.3.2',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  subjectAltName: '2.5.29.17',
  subjectKeyId: '2.5.29.14',
  authorityKeyId: '2.5.29.35',
};

export interface Subject {
  commonName: string;
  /** Kubernetes reads these as the user's groups. */
  organizations?: string[];
}

function name(s: Subject): Buffer {
  const rdns = (s.organizations ?? []).map((o) => set(seq(oid(OID.organization), utf8(o))));
  rdns.push(set(seq(oid(OID.commonName), utf8(s.commonName))));
  return seq(...rdns);
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));
}

/** keyUsage bits, numbered as in RFC 5280 (bit 0 is the most significant of the first byte). */
function keyUsage(bits: number[]): Buffer {
  let v = 0;
  for (const b of bits) v |= 0x80 >> b;
  let unused = 0;
  while (unused < 7 && (v & (1 << unused)) === 0) unused++;
  return bitString(Buffer.from([v]), unused);
}

const KEY_USAGE = { digitalSignature: 0, keyCertSign: 5, cRLSign: 6 };

/** GeneralNames: dNSName is [2] IA5String, iPAddress is [7] OCTET STRING (4 or 16 bytes). */
function subjectAltNames(dnsNames: string[], ipAddresses: string[]): Buffer {
  const names = dnsNames.map((d) => tlv(0x82, Buffer.from(d, 'ascii')));
  for (const ip of ipAddresses) names.push(tlv(0x87, ipBytes(ip)));
  return seq(...names);
}

function ipBytes(ip: string): Buffer {
  if (isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  if (!isIPv6(ip)) throw new Error(`not an IP address: ${ip}`);
  const [head = '', tail = ''] = ip.split('::');
  const groups = (part: string) => (part ? part.split(':') : []);
  const h = groups(head);
  const t = ip.includes('::') ? groups(tail) : [];
  const all = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

function spkiDer(key: KeyObject): Buffer {
  return createPublicKey(key).export({ type: 'spki', format: 'der' });
}

/** The key identifier: the SHA-1-free variant of RFC 7093 (first 160 bits of SHA-256). */
function keyId(key: KeyObject): Buffer {
  return createHash('sha256').update(spkiDer(key)).digest().subarray(0, 20);
}

function toPem(label: string, der: Buffer): string {
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN ${label}-----\n${b64.endsWith('\n') ? b64 : `${b64}\n`}-----END ${label}-----\n`;
}

export interface IssuedCertificate {
  certPem: string;
  keyPem: string;
  key: KeyObject;
  subject: Subject;
}

export interface IssueOptions {
  subject: Subject;
  /** The CA that signs; absent for a self-signed certificate. */
  issuer?: Pick<IssuedCertificate, 'key' | 'subject'>;
  isCA: boolean;
  /** For a leaf: what it may be used for (default client). */
  usage?: 'client' | 'server';
  /** Subject alternative names of a server certificate. */
  dnsNames?: string[];
  ipAddresses?: string[];
  notBefore: Date;
  notAfter: Date;
}

export function issueCertificate(opts: IssueOptions): IssuedCertificate {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const signer = opts.issuer?.key ?? privateKey;
  const issuerName = name(opts.issuer?.subject ?? opts.subject);
  const ski = keyId(privateKey);
  const aki = keyId(signer);
  const extensions = [
    extension(OID.basicConstraints, true, opts.isCA ? seq(bool(true)) : seq()),
    extension(
      OID.keyUsage,
      true,
      keyUsage(
        opts.isCA
          ? [KEY_USAGE.digitalSignature, KEY_USAGE.keyCertSign, KEY_USAGE.cRLSign]
          : [KEY_USAGE.digitalSignature],
      ),
    ),
    ...(opts.isCA
      ? []
      : [
          extension(
            OID.extKeyUsage,
            false,
            seq(oid(opts.usage === 'server' ? OID.serverAuth : OID.clientAuth)),
          ),
        ]),
    ...(opts.dnsNames?.length || opts.ipAddresses?.length
      ? [extension(OID.subjectAltName, false, subjectAltNames(opts.dnsNames ?? [], opts.ipAddresses ?? []))]
      : []),
    extension(OID.subjectKeyId, false, octets(ski)),
    extension(OID.authorityKeyId, false, seq(tlv(0x80, aki))),
  ];
  const algorithm = seq(oid(OID.ecdsaWithSHA256));
  const tbs = seq(
    explicit(0, integer(Buffer.from([2]))), // v3
    integer(Buffer.concat([Buffer.from([0x01]), randomBytes(15)])),
    algorithm,
    issuerName,
    seq(time(opts.notBefore), time(opts.notAfter)),
    name(opts.subject),
    spkiDer(privateKey),
    explicit(3, seq(...extensions)),
  );
  const signature = sign('sha256', tbs, { key: signer, dsaEncoding: 'der' });
  const cert = seq(tbs, algorithm, bitString(signature));
  return {
    certPem: toPem('CERTIFICATE', cert),
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    key: privateKey,
    subject: opts.subject,
  };
}
