import { describe, expect, it } from '@jest/globals';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { issueCertificate } from './x509.js';

const now = new Date('2026-12-02T12:00:00Z');
const validity = { notBefore: now, notAfter: new Date('2027-12-02T12:00:00Z') };

describe('issueCertificate', () => {
  const CA = 'test-ca';
  const ca = issueCertificate({ subject: { commonName: CA }, isCA: true, ...validity });

  it('a CA that signs itself and says it is a CA', () => {
    const x = new X509Certificate(ca.certPem);
    expect(x.subject).toBe(`CN=${CA}`);
    expect(x.ca).toBe(true);
    expect(x.verify(x.publicKey)).toBe(true);
    expect(new Date(x.validFrom).toISOString()).toBe(now.toISOString());
  });

  it('a client certificate: user in CN, groups in O, clientAuth, signed by the CA, not a CA', () => {
    const leaf = issueCertificate({
      subject: { commonName: 'jane', organizations: ['system:masters', 'devs'] },
      issuer: ca,
      isCA: false,
      ...validity,
    });
    const x = new X509Certificate(leaf.certPem);
    expect(x.subject.split('\n')).toEqual(['O=system:masters', 'O=devs', 'CN=jane']);
    expect(x.issuer).toBe(`CN=${CA}`);
    expect(x.ca).toBe(false);
    expect(x.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
    expect(x.checkIssued(new X509Certificate(ca.certPem))).toBe(true);
    expect(x.verify(new X509Certificate(ca.certPem).publicKey)).toBe(true);
    expect(x.checkPrivateKey(createPrivateKey(leaf.keyPem))).toBe(true);
  });

  it('a self-signed server certificate names its DNS names and IPs (v4 and v6)', () => {
    const srv = issueCertificate({
      subject: { commonName: 'metrics' },
      isCA: false,
      usage: 'server',
      dnsNames: ['localhost', 'ts-kcm-metrics.ts-kcm-system.svc'],
      ipAddresses: ['127.0.0.1', '::1', 'fd00:10::2a'],
      ...validity,
    });
    const x = new X509Certificate(srv.certPem);
    expect(x.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
    expect(x.subjectAltName).toBe(
      'DNS:localhost, DNS:ts-kcm-metrics.ts-kcm-system.svc, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, IP Address:FD00:10:0:0:0:0:0:2A',
    );
    expect(x.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(x.checkHost('localhost')).toBe('localhost');
  });

  it('dates from 2050 on are GeneralizedTime (UTCTime would read them as 1950)', () => {
    const late = issueCertificate({
      subject: { commonName: 'late' },
      isCA: true,
      notBefore: now,
      notAfter: new Date('2051-01-01T00:00:00Z'),
    });
    expect(new Date(new X509Certificate(late.certPem).validTo).getUTCFullYear()).toBe(2051);
  });
});
