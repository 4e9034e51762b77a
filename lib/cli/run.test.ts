import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommanderError } from 'commander';
import type { ControllerDefinition } from '../controller/types.js';
import { ExitError } from './exit.js';
import { runCommand, type RunOptions } from './run.js';

const defs: ControllerDefinition[] = [
  {
    name: 'test-controller',
    enabledByDefault: true,
    flags: [{ name: 'concurrent-test-syncs', description: 'workers', defaultValue: 5 }],
    rbac: [],
    create: () => ({ run: async () => {} }),
  },
];

/** Parse `argv` as `ts-kcm run` would and return what the manager would be given. */
async function parse(argv: string[]): Promise<Partial<RunOptions>> {
  let got: Partial<RunOptions> | undefined;
  const cmd = runCommand(defs, async (opts) => {
    got = opts;
    return 0;
  });
  cmd.exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
  await cmd.parseAsync(argv, { from: 'user' });
  return got!;
}

async function parseError(argv: string[]): Promise<unknown> {
  return parse(argv).then(
    () => undefined,
    (err: unknown) => err,
  );
}

describe('ts-kcm run flags', () => {
  it('--sharding-ring and --user-agent pass through; the lease timings are checked for a ring too', async () => {
    const o = await parse(['--sharding-ring=workers', '--user-agent=replica-a/1']);
    expect(o.shardingRing).toBe('workers');
    expect(o.userAgent).toBe('replica-a/1');
    expect(o.leaderElect).toBe(true); // ignored by the manager with a ring, which logs so
    const err = await parseError([
      '--leader-elect=false',
      '--sharding-ring=workers',
      '--leader-elect-renew-deadline=20s',
    ]);
    expect(err).toBeInstanceOf(ExitError);
  });

  it("defaults are kube-controller-manager's", async () => {
    expect(await parse([])).toEqual({
      kubeconfig: undefined,
      controllers: ['*'],
      kubeApiQps: 20,
      kubeApiBurst: 30,
      leaderElect: true,
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      leaseName: 'ts-kcm',
      leaseNamespace: 'kube-system',
      metricsBindAddress: ':8080',
      metricsSecure: false,
      metricsCertDir: undefined,
      useServiceAccountCredentials: false,
      serviceAccountCredentialsNamespace: 'kube-system',
      healthProbeBindAddress: ':8081',
      shutdownTimeoutMs: 30_000,
      minResyncPeriodMs: 12 * 3600_000,
      verbosity: 0,
      logFormat: undefined,
      controllerFlags: { 'concurrent-test-syncs': 5 },
      embeddedDir: '.ts-kcm/embedded',
    });
  });

  it('parses every flag', async () => {
    const o = await parse([
      '--kubeconfig=/tmp/kc',
      '--controllers=*,-test-controller',
      '--kube-api-qps=50.5',
      '--kube-api-burst',
      '100',
      '--leader-elect=false',
      '--leader-elect-lease-duration=1m30s',
      '--leader-elect-renew-deadline=500ms',
      '--leader-elect-retry-period=1.5s',
      '--leader-elect-resource-name=mine',
      '--leader-elect-resource-namespace=ops',
      '--metrics-bind-address=127.0.0.1:0',
      '--health-probe-bind-address=0',
      '--shutdown-timeout=5s',
      '--min-resync-period=1h30m',
      '-v',
      '4',
      '--log-format=text',
      '--concurrent-test-syncs=9',
    ]);
    expect(o).toMatchObject({
      kubeconfig: '/tmp/kc',
      controllers: ['*', '-test-controller'],
      kubeApiQps: 50.5,
      kubeApiBurst: 100,
      leaderElect: false,
      leaseDurationMs: 90_000,
      renewDeadlineMs: 500,
      retryPeriodMs: 1_500,
      leaseName: 'mine',
      leaseNamespace: 'ops',
      metricsBindAddress: '127.0.0.1:0',
      healthProbeBindAddress: '0',
      shutdownTimeoutMs: 5_000,
      minResyncPeriodMs: 5_400_000,
      verbosity: 4,
      logFormat: 'text',
      controllerFlags: { 'concurrent-test-syncs': 9 },
    });
  });

  it('accepts --leader-elect alone, =true and --v=N', async () => {
    expect((await parse(['--leader-elect'])).leaderElect).toBe(true);
    expect((await parse(['--leader-elect=true'])).leaderElect).toBe(true);
    expect((await parse(['--v=3'])).verbosity).toBe(3);
    // klog's shorthand spelling, as in kube-controller-manager's manifests.
    expect((await parse(['-v=2'])).verbosity).toBe(2);
    expect((await parse(['-v', '5'])).verbosity).toBe(5);
  });

  it.each([
    [['--no-such-flag'], 'commander.unknownOption'],
    [['--leader-elect=maybe'], 'commander.invalidArgument'],
    [['--leader-elect-lease-duration=15'], 'commander.invalidArgument'],
    [['--leader-elect-retry-period=0s'], 'commander.invalidArgument'],
    [['--kube-api-burst=1.5'], 'commander.invalidArgument'],
    [['--log-format=xml'], 'commander.invalidArgument'],
    [['--concurrent-test-syncs=many'], 'commander.invalidArgument'],
    [['--concurrent-test-syncs=0'], 'commander.invalidArgument'],
    [['--kube-api-qps=-1'], 'commander.invalidArgument'],
    [['--shutdown-timeout=-1s'], 'commander.invalidArgument'],
    [['--min-resync-period=-1h'], 'commander.invalidArgument'],
    [['extra'], 'commander.excessArguments'],
  ])('rejects %j as a usage error', async (argv, code) => {
    const err = await parseError(argv);
    expect(err).toBeInstanceOf(CommanderError);
    expect((err as CommanderError).code).toBe(code);
  });

  it('takes --metrics-secure and a --metrics-cert-dir that holds tls.crt and tls.key', async () => {
    expect((await parse(['--metrics-secure'])).metricsSecure).toBe(true);
    const dir = mkdtempSync(join(tmpdir(), 'ts-kcm-certdir-'));
    try {
      const missing = await parseError(['--metrics-secure', `--metrics-cert-dir=${dir}`]);
      expect((missing as ExitError).exitCode).toBe(2);
      expect((missing as ExitError).message).toBe(
        `error: --metrics-cert-dir: ${join(dir, 'tls.crt')} not found`,
      );
      writeFileSync(join(dir, 'tls.crt'), 'x');
      writeFileSync(join(dir, 'tls.key'), 'x');
      expect((await parse(['--metrics-secure', `--metrics-cert-dir=${dir}`])).metricsCertDir).toBe(dir);
      const plain = await parseError([`--metrics-cert-dir=${dir}`]);
      expect((plain as ExitError).message).toBe('error: --metrics-cert-dir needs --metrics-secure=true');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects a lease not longer than the renew deadline, and non-Lease locks, with exit 2', async () => {
    const err = await parseError(['--leader-elect-lease-duration=10s']);
    expect(err).toBeInstanceOf(ExitError);
    expect((err as ExitError).exitCode).toBe(2);
    expect((err as ExitError).message).toBe(
      'error: --leader-elect-lease-duration must be greater than --leader-elect-renew-deadline',
    );
    const retry = await parseError(['--leader-elect-retry-period=9s']);
    expect((retry as ExitError).message).toBe(
      'error: --leader-elect-renew-deadline must be greater than --leader-elect-retry-period * 1.2',
    );
    expect((await parse(['--leader-elect=false', '--leader-elect-retry-period=9s'])).retryPeriodMs).toBe(
      9_000,
    );
    const burst = await parseError(['--kube-api-burst=0']);
    expect((burst as ExitError).message).toBe(
      'error: --kube-api-burst must be at least 1 when --kube-api-qps is above 0',
    );
    expect((await parse(['--kube-api-qps=0', '--kube-api-burst=0'])).kubeApiBurst).toBe(0);
    const lock = await parseError(['--leader-elect-resource-lock=endpoints']);
    expect((lock as ExitError).message).toBe(
      'error: --leader-elect-resource-lock: only "leases" is supported',
    );
  });
});

describe('typed controller flags', () => {
  const typed: ControllerDefinition[] = [
    {
      name: 'typed-controller',
      enabledByDefault: true,
      flags: [
        { name: 'typed-default-class', description: 'b', defaultValue: 0, type: 'boolean' },
        { name: 'typed-hold', description: 'd', defaultValue: 10_000, type: 'duration' },
      ],
      rbac: [],
      create: () => ({ run: async () => {} }),
    },
  ];
  async function parseTyped(argv: string[]): Promise<Record<string, number> | undefined> {
    let got: Partial<RunOptions> | undefined;
    const cmd = runCommand(typed, async (opts) => {
      got = opts;
      return 0;
    });
    cmd.exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
    await cmd.parseAsync(argv, { from: 'user' });
    return got?.controllerFlags;
  }

  it('boolean flags are 1/0 and accept a bare --flag; duration flags are Go durations in ms', async () => {
    expect(await parseTyped([])).toEqual({ 'typed-default-class': 0, 'typed-hold': 10_000 });
    expect(await parseTyped(['--typed-default-class', '--typed-hold=1m30s'])).toEqual({
      'typed-default-class': 1,
      'typed-hold': 90_000,
    });
    expect(await parseTyped(['--typed-default-class=false', '--typed-hold', '500ms'])).toEqual({
      'typed-default-class': 0,
      'typed-hold': 500,
    });
  });

  it('rejects a bad boolean or duration', async () => {
    for (const argv of [['--typed-default-class=maybe'], ['--typed-hold=10']]) {
      const err = await parseTyped(argv).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect((err as CommanderError).code).toBe('commander.invalidArgument');
    }
  });
});
