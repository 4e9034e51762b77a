/**
 * No credential ever reaches the log, even at -v 10: `ts-kcm run` against the real apiserver
 * with every default controller and leader election, once per way of holding a secret — a
 * token in the kubeconfig, a token file named by the kubeconfig (client-go's `tokenFile`)
 * beside client-certificate and key data, a kind-style client-certificate kubeconfig (the
 * test control plane's kubeconfig-cert), and the in-cluster service-account directory —
 * until its controllers start, then SIGINT. Its whole output is searched for the secrets (raw and
 * base64) and for Authorization headers. A kubeconfig with insecure-skip-tls-verify runs too,
 * and must say once that TLS verification is off.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump, load } from 'js-yaml';
import { startTsKcm, testKubeconfigPath, uniqueName, type TsKcmProcess } from '../support/cluster.js';

interface KubeconfigFile {
  clusters: { name: string; cluster: Record<string, unknown> & { server: string } }[];
  users: { name: string; user: Record<string, unknown> }[];
  contexts: unknown[];
  'current-context': string;
}

let dir: string;
let base: KubeconfigFile;
let server: URL;
let token: string;
let caPem: string;
const procs: TsKcmProcess[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ts-kcm-creds-'));
  base = load(readFileSync(testKubeconfigPath(), 'utf8')) as KubeconfigFile;
  const cluster = base.clusters[0]!.cluster;
  server = new URL(cluster.server);
  caPem = Buffer.from(String(cluster['certificate-authority-data']), 'base64').toString('utf8');
  token = String(base.users[0]!.user.token);
  expect(token.length).toBeGreaterThan(8);
});

afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  rmSync(dir, { recursive: true, force: true });
});

function writeKubeconfig(
  name: string,
  cluster: Record<string, unknown>,
  user: Record<string, unknown>,
): string {
  const file = join(dir, name);
  const kc = {
    ...base,
    clusters: [{ name: 'c', cluster: { server: server.href.replace(/\/$/, ''), ...cluster } }],
    users: [{ name: 'u', user }],
    contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u' } }],
    'current-context': 'ctx',
  };
  writeFileSync(file, dump(kc), { mode: 0o600 });
  return file;
}

/** Everything ts-kcm printed from start until its controllers ran and it stopped, at -v 10. */
async function runUntilSynced(
  kubeconfig: string | false,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  const kcm = startTsKcm(
    [
      'run',
      '-v',
      '10',
      '--log-format=json',
      '--metrics-bind-address=127.0.0.1:0',
      '--health-probe-bind-address=127.0.0.1:0',
      `--leader-elect-resource-name=${uniqueName('creds')}`,
    ],
    { kubeconfig, env },
  );
  procs.push(kcm);
  // Every built-in controller whose API the test apiserver serves has started (the
  // service-lb-ipam-controller waits for its CRD, which is not installed here).
  for (const controller of ['service-cidr-controller', 'resourceclaim-controller']) {
    const started = `"message":"started controller"`;
    const named = `"controller":"${controller}"`;
    await kcm.waitForOutput(new RegExp(`${named}[^\\n]*${started}|${started}[^\\n]*${named}`), 60_000);
  }
  expect(await kcm.stop()).toBe(0);
  return kcm.output();
}

/** The secret in the forms a leak would take: as is, base64, and each 40-character piece of a PEM body. */
function forms(secret: string): string[] {
  const pemBody = secret.includes('-----BEGIN')
    ? secret
        .split('\n')
        .filter((l) => l && !l.startsWith('-----'))
        .join('')
    : '';
  const pieces = pemBody.match(/.{40}/g) ?? [];
  return [secret.trim(), Buffer.from(secret).toString('base64'), ...pieces];
}

/** What leaked (secrets shown by their first characters only, in lines with the secret cut out). */
function leaks(output: string, secrets: string[]): string[] {
  const all = secrets.flatMap(forms);
  const found = all.filter((s) => output.includes(s));
  const redact = (line: string) => all.reduce((l, s) => l.split(s).join('<secret>'), line);
  const headers = output.split('\n').filter((l) => /authorization|bearer /i.test(l));
  return [...found.map((s) => `secret ${s.slice(0, 4)}…`), ...headers.map(redact)];
}

describe('credentials never reach the log at -v 10', () => {
  it('token in the kubeconfig', async () => {
    const out = await runUntilSynced(testKubeconfigPath());
    expect(out.split('\n').length).toBeGreaterThan(20); // it did log at -v 10
    expect(leaks(out, [token])).toEqual([]);
  }, 120_000);

  it('token file named by the kubeconfig, with client-certificate and key data', async () => {
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
    const key = join(dir, 'client.key');
    const cert = join(dir, 'client.crt');
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', key, '-out', cert, '-subj', '/CN=creds-test', '-days', '1',
    ], { stdio: 'ignore' }); // prettier-ignore
    const keyPem = readFileSync(key, 'utf8');
    const kubeconfig = writeKubeconfig(
      'kubeconfig-tokenfile-cert',
      { 'certificate-authority-data': Buffer.from(caPem).toString('base64') },
      {
        tokenFile,
        'client-certificate-data': Buffer.from(readFileSync(cert)).toString('base64'),
        'client-key-data': Buffer.from(keyPem).toString('base64'),
      },
    );
    const out = await runUntilSynced(kubeconfig);
    expect(leaks(out, [token, keyPem])).toEqual([]);
  }, 120_000);

  it('client certificate kubeconfig (kind-style, the certificate is what authenticates)', async () => {
    const dirOfPlane = process.env.TS_KCM_TEST_DIR;
    if (!dirOfPlane) throw new Error('TS_KCM_TEST_DIR is not set: run with the integration project');
    const kubeconfig = join(dirOfPlane, 'kubeconfig-cert');
    const user = (load(readFileSync(kubeconfig, 'utf8')) as KubeconfigFile).users[0]!.user;
    const keyData = String(user['client-key-data']);
    expect(user.token).toBeUndefined();
    const out = await runUntilSynced(kubeconfig);
    expect(leaks(out, [Buffer.from(keyData, 'base64').toString('utf8'), keyData])).toEqual([]);
  }, 120_000);

  it('in-cluster service-account directory', async () => {
    const saDir = join(dir, 'serviceaccount');
    execFileSync('mkdir', ['-p', saDir]);
    writeFileSync(join(saDir, 'token'), token, { mode: 0o600 });
    writeFileSync(join(saDir, 'ca.crt'), caPem);
    writeFileSync(join(saDir, 'namespace'), 'default');
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: dir, // no ~/.kube/config to fall back on
      TS_KCM_SERVICE_ACCOUNT_DIR: saDir,
      KUBERNETES_SERVICE_HOST: server.hostname,
      KUBERNETES_SERVICE_PORT: server.port,
    };
    const out = await runUntilSynced(false, env);
    expect(out).not.toContain('starting the embedded control plane');
    expect(leaks(out, [token])).toEqual([]);
  }, 120_000);

  it('insecure-skip-tls-verify: runs, says once that TLS verification is off, leaks nothing', async () => {
    const kubeconfig = writeKubeconfig(
      'kubeconfig-insecure',
      { 'insecure-skip-tls-verify': true },
      { token },
    );
    const out = await runUntilSynced(kubeconfig);
    const warnings = out
      .split('\n')
      .filter((l) => l.includes('TLS verification of the apiserver certificate is off'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('insecure-skip-tls-verify');
    expect(leaks(out, [token])).toEqual([]);
  }, 120_000);
});
