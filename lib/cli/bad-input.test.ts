/**
 * Bad input at start-up, end to end through main(): each row is a kubeconfig or flag that
 * can never work, and each must end in one clear line on stderr and exit code 2 — never a
 * stack trace, never a controller-manager that starts and then retries 401s forever.
 * docs/reliability.md's bad-input table lists the same cases.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ControllerDefinition } from '../controller/types.js';
import { main } from './main.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ts-kcm-bad-input-'));
const defs: ControllerDefinition[] = [
  {
    name: 'test-controller',
    enabledByDefault: true,
    flags: [{ name: 'concurrent-test-syncs', description: 'workers', defaultValue: 5 }],
    rbac: [],
    create: () => ({ run: async () => {} }),
  },
];

/** A self-signed client certificate valid only on 1 Jan 2020 (openssl ca can set the dates). */
function expiredCert(): { cert: string; key: string } {
  const ca = path.join(dir, 'ca');
  fs.mkdirSync(ca);
  fs.writeFileSync(path.join(ca, 'index.txt'), '');
  fs.writeFileSync(path.join(ca, 'serial'), '01\n');
  fs.writeFileSync(
    path.join(ca, 'ca.cnf'),
    '[ca]\ndefault_ca=CA\n[CA]\ndatabase=index.txt\nserial=serial\nnew_certs_dir=.\ndefault_md=sha256\npolicy=p\n[p]\ncommonName=supplied\n',
  );
  const opts = { cwd: ca, stdio: 'ignore' as const };
  execFileSync('openssl', [
    'req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', 'client.key', '-out', 'client.csr', '-subj', '/CN=expired-user',
  ], opts); // prettier-ignore
  execFileSync('openssl', [
    'ca', '-batch', '-config', 'ca.cnf', '-selfsign', '-keyfile', 'client.key', '-in', 'client.csr',
    '-startdate', '20200101000000Z', '-enddate', '20200102000000Z', '-out', 'client.crt',
  ], opts); // prettier-ignore
  return { cert: path.join(ca, 'client.crt'), key: path.join(ca, 'client.key') };
}

function kubeconfig(name: string, user: string, cluster = 'server: https://127.0.0.1:1'): string {
  const file = path.join(dir, `${name}.kubeconfig`);
  fs.writeFileSync(
    file,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: c',
      `  cluster: { ${cluster} }`,
      'users:',
      '- name: u',
      `  user: { ${user} }`,
      'contexts:',
      '- name: ctx',
      '  context: { cluster: c, user: u }',
      'current-context: ctx',
      '',
    ].join('\n'),
  );
  return file;
}

let stderr = '';
const savedEnv = { ...process.env };

beforeAll(() => {
  jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
});

afterEach(() => {
  stderr = '';
  process.env = { ...savedEnv };
});

afterAll(() => {
  jest.restoreAllMocks();
  fs.rmSync(dir, { recursive: true, force: true });
});

type Row = [string, () => string[], RegExp];

const rows: Row[] = [
  [
    'malformed kubeconfig (not YAML)',
    () => {
      const file = path.join(dir, 'garbage.kubeconfig');
      fs.writeFileSync(file, 'clusters: [ {name: c, cluster: {server: "https://x"}\n  : : :\n');
      return ['--kubeconfig', file];
    },
    /^error: kubeconfig .*garbage\.kubeconfig: /,
  ],
  [
    'kubeconfig whose context names no cluster',
    () => {
      const file = path.join(dir, 'nocluster.kubeconfig');
      fs.writeFileSync(
        file,
        'apiVersion: v1\nkind: Config\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: ctx, context: {cluster: gone, user: u}}]\ncurrent-context: ctx\n',
      );
      return ['--kubeconfig', file];
    },
    /^error: kubeconfig .*nocluster\.kubeconfig: .*(no cluster|cluster)/,
  ],
  [
    'missing kubeconfig file',
    () => ['--kubeconfig', path.join(dir, 'absent.kubeconfig')],
    /^error: kubeconfig .*absent\.kubeconfig: kubeconfig .* does not exist/,
  ],
  [
    'client certificate file unreadable',
    () => [
      '--kubeconfig',
      kubeconfig('nocert', `client-certificate: ${dir}/none.crt, client-key: ${dir}/none.key`),
    ],
    /^error: kubeconfig .*nocert\.kubeconfig: .*none\.(crt|key).*(cannot be read|ENOENT|no such file)/i,
  ],
  [
    'expired client certificate',
    () => {
      const { cert, key } = expiredCert();
      return ['--kubeconfig', kubeconfig('expired', `client-certificate: ${cert}, client-key: ${key}`)];
    },
    /^error: kubeconfig .*expired\.kubeconfig: client certificate of user "u" \(CN=expired-user\) expired on 2020-01-02T00:00:00\.000Z/,
  ],
  [
    'in-cluster token file empty',
    () => {
      const sa = path.join(dir, 'sa-empty');
      fs.mkdirSync(sa);
      fs.writeFileSync(path.join(sa, 'token'), '');
      fs.writeFileSync(path.join(sa, 'ca.crt'), '');
      inCluster(sa);
      return [];
    },
    /^error: kubeconfig in-cluster: token file .*sa-empty\/token cannot be used: the file is empty/,
  ],
  [
    'in-cluster token file unreadable (a directory)',
    () => {
      const sa = path.join(dir, 'sa-dir');
      fs.mkdirSync(path.join(sa, 'token'), { recursive: true });
      fs.writeFileSync(path.join(sa, 'ca.crt'), '');
      inCluster(sa);
      return [];
    },
    /^error: kubeconfig in-cluster: token file .*sa-dir\/token cannot be used: EISDIR/,
  ],
  [
    '--kube-api-qps out of range',
    () => ['--kube-api-qps=-5'],
    /--kube-api-qps.*must be a non-negative number/,
  ],
  [
    '--kube-api-burst 0 with qps',
    () => ['--kube-api-burst=0', ...absent()],
    /^error: --kube-api-burst must be at least 1/,
  ],
  [
    '--concurrent-*-syncs 0',
    () => ['--concurrent-test-syncs=0', ...absent()],
    /--concurrent-test-syncs.*must be at least 1/,
  ],
  [
    'negative --shutdown-timeout',
    () => ['--shutdown-timeout=-1s', ...absent()],
    /--shutdown-timeout.*must not be negative/,
  ],
  [
    'lease not longer than renew deadline',
    () => ['--leader-elect-lease-duration=5s', ...absent()],
    /^error: --leader-elect-lease-duration must be greater than --leader-elect-renew-deadline/,
  ],
];

function absent(): string[] {
  return ['--kubeconfig', path.join(dir, 'absent.kubeconfig')];
}

function inCluster(saDir: string): void {
  delete process.env.KUBECONFIG;
  process.env.HOME = path.join(dir, 'nohome');
  process.env.KUBERNETES_SERVICE_HOST = '127.0.0.1';
  process.env.KUBERNETES_SERVICE_PORT = '1';
  process.env.TS_KCM_SERVICE_ACCOUNT_DIR = saDir;
}

describe('bad input at start-up: a clear message and exit code 2', () => {
  it.each(rows)('%s', async (_name, setup, message) => {
    const args = setup();
    const code = await main(
      ['run', '--metrics-bind-address=0', '--health-probe-bind-address=0', ...args],
      defs,
    );
    const firstError = stderr.split('\n').find((l) => l.startsWith('error:')) ?? stderr;
    expect({ code, firstError }).toEqual({ code: 2, firstError: expect.stringMatching(message) });
    expect(stderr).not.toMatch(/\n\s+at .+:\d+:\d+/); // no stack trace
  });
});
