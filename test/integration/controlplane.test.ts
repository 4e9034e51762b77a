/**
 * `ts-kcm controlplane up|status|down` through the built CLI, on a second, private control
 * plane, plus the CLI's usage errors.
 */
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { ControlPlane, freePorts } from '../../lib/controlplane/index.js';
import { runCommand, TS_KCM_MAIN, KUBECTL, waitFor } from '../support/cluster.js';

jest.setTimeout(180_000);

function tsKcm(args: string[]) {
  return runCommand(process.execPath, [TS_KCM_MAIN, ...args]);
}

/** Live (not zombie) process? A killed child of init may linger as a zombie for a moment. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\S+ \(.*\) [ZX]/.test(stat);
  } catch {
    return false;
  }
}

describe('ts-kcm controlplane', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ts-kcm-cli-'));
  });

  afterAll(async () => {
    if (existsSync(join(dir, 'state.json'))) await ControlPlane.load(dir).stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('up, status, kubectl, down', async () => {
    const up = await tsKcm([
      'controlplane',
      'up',
      '--dir',
      dir,
      '--service-cluster-ip-range',
      '10.96.0.0/28',
    ]);
    expect(up.code).toBe(0);
    expect(up.stdout).toBe(`${join(dir, 'kubeconfig')}\n`);

    // The CLI process has exited; the components must still be serving.
    const cidrs = await runCommand(KUBECTL, ['--kubeconfig', join(dir, 'kubeconfig'), 'get', 'servicecidrs']);
    expect(cidrs.code).toBe(0);
    expect(cidrs.stdout).toMatch(/^kubernetes\s+10\.96\.0\.0\/28\s/m);

    const status = await tsKcm(['controlplane', 'status', '--dir', dir]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^etcd\s+running\s+pid \d+$/m);
    expect(status.stdout).toMatch(/^kube-apiserver\s+running\s+pid \d+$/m);
    expect(status.stdout).not.toMatch(/kube-scheduler/);

    const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as {
      components: Record<string, { pid: number }>;
    };
    const pids = Object.values(state.components).map((c) => c.pid);
    expect(pids).toHaveLength(2);
    for (const pid of pids) expect(alive(pid)).toBe(true);

    // An informer test's view: kube-apiserver dies and comes back on the same URL and etcd.
    const cp = ControlPlane.load(dir);
    const url = cp.apiserverURL;
    const apiserverPid = state.components['kube-apiserver']?.pid ?? 0;
    await cp.restartApiserver();
    expect(alive(apiserverPid)).toBe(false);
    expect(ControlPlane.load(dir).apiserverURL).toBe(url);
    const restarted = ControlPlane.load(dir)
      .status()
      .find((c) => c.name === 'kube-apiserver');
    expect(restarted?.running).toBe(true);
    expect(restarted?.pid).not.toBe(apiserverPid);
    const again = await runCommand(KUBECTL, [
      '--kubeconfig',
      join(dir, 'kubeconfig'),
      'get',
      'servicecidr',
      'kubernetes',
      '-o',
      'name',
    ]);
    expect(again.stdout).toBe('servicecidr.networking.k8s.io/kubernetes\n');
    pids.push(restarted?.pid ?? 0);

    const down = await tsKcm(['controlplane', 'down', '--dir', dir]);
    expect(down.code).toBe(0);
    for (const pid of pids) {
      await waitFor(() => !alive(pid), { timeoutMs: 10_000, description: `pid ${pid} gone` });
    }
    // mkdtemp's directory held only control plane files, so nothing is left.
    expect(existsSync(dir)).toBe(false);

    const after = await tsKcm(['controlplane', 'status', '--dir', dir]);
    expect(after.code).toBe(3);
    expect(after.stderr).toBe(`no control plane in ${dir}\n`);
  });

  test('a port race on the apiserver port restarts the whole start on new ports', async () => {
    const raceDir = mkdtempSync(join(tmpdir(), 'ts-kcm-race-'));
    const squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    const taken = (squatter.address() as { port: number }).port;
    let picks = 0;
    const cp = await ControlPlane.start({
      dir: raceDir,
      pickPorts: async () => {
        picks++;
        const ports = await freePorts(3);
        return picks === 1 ? [ports[0] ?? 0, ports[1] ?? 0, taken] : ports;
      },
    });
    try {
      expect(picks).toBe(2);
      expect(cp.startup.attempts).toBe(2);
      expect(cp.apiserverURL).not.toBe(`https://127.0.0.1:${taken}`);
      expect(cp.logTail('kube-apiserver', 1000)).toContain(
        `127.0.0.1:${taken}: bind: address already in use`,
      );
      expect(cp.status().map((c) => [c.name, c.running])).toEqual([
        ['etcd', true],
        ['kube-apiserver', true],
      ]);
    } finally {
      await cp.stop();
      squatter.close();
      rmSync(raceDir, { recursive: true, force: true });
    }
  });

  test('an audit log of writes, and a component restarted with changed flags', async () => {
    const auditDir = mkdtempSync(join(tmpdir(), 'ts-kcm-audit-'));
    const cp = await ControlPlane.start({ dir: auditDir, auditLog: true });
    try {
      const kubeconfig = ['--kubeconfig', cp.kubeconfigPath];
      const name = `audit-${process.pid}`;
      const made = await runCommand(KUBECTL, [...kubeconfig, 'create', 'configmap', name, '-n', 'default']);
      expect(made.code).toBe(0);
      await runCommand(KUBECTL, [...kubeconfig, 'get', 'configmap', name, '-n', 'default']);
      type AuditEvent = { verb: string; stage: string; userAgent?: string; objectRef?: { name?: string } };
      const events = (): AuditEvent[] =>
        readFileSync(cp.auditLogPath, 'utf8')
          .split('\n')
          .filter((l) => l.trim() !== '')
          .map((l) => JSON.parse(l) as AuditEvent);
      const create = await waitFor(
        () => events().find((e) => e.verb === 'create' && e.objectRef?.name === name),
        { timeoutMs: 10_000, description: 'the create in the audit log' },
      );
      expect(create.stage).toBe('ResponseComplete');
      expect(create.userAgent).toMatch(/^kubectl/);
      expect(events().some((e) => e.verb === 'get' || e.verb === 'list' || e.verb === 'watch')).toBe(false);

      await cp.restartComponent('kube-apiserver', { extraArgs: ['--max-requests-inflight=7'] });
      const state = JSON.parse(readFileSync(join(auditDir, 'state.json'), 'utf8')) as {
        components: Record<string, { args: string[] }>;
      };
      const args = state.components['kube-apiserver']?.args ?? [];
      expect(args.filter((a) => a.startsWith('--max-requests-inflight'))).toEqual([
        '--max-requests-inflight=7',
      ]);
      expect(args).toContain(`--audit-log-path=${cp.auditLogPath}`);
      const again = await runCommand(KUBECTL, [...kubeconfig, 'delete', 'configmap', name, '-n', 'default']);
      expect(again.code).toBe(0);
      await waitFor(() => events().some((e) => e.verb === 'delete' && e.objectRef?.name === name), {
        timeoutMs: 10_000,
        description: 'the delete after the restart in the audit log',
      });
    } finally {
      await cp.stop();
      rmSync(auditDir, { recursive: true, force: true });
    }
  });

  test('unknown subcommand: usage on stderr, exit 2', async () => {
    const res = await tsKcm(['frobnicate']);
    expect(res.code).toBe(2);
    expect(res.stdout).toBe('');
    expect(res.stderr).toContain("error: unknown command 'frobnicate'");
    expect(res.stderr).toContain('Usage: ts-kcm [options] [command]');
  });

  test('unknown flag: usage on stderr, exit 2', async () => {
    const res = await tsKcm(['controlplane', 'up', '--dir', dir, '--frobnicate']);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain("error: unknown option '--frobnicate'");
    expect(res.stderr).toContain('Usage: ts-kcm controlplane up [options]');
    expect(existsSync(join(dir, 'state.json'))).toBe(false);
  });

  test('version names ts-kcm, Node and the pinned Kubernetes', async () => {
    const res = await tsKcm(['version']);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(
      /^ts-kcm \d+\.\d+\.\d+\nnode v24\.\d+\.\d+\nkubernetes v1\.35\.4\netcd v3\.6\.\d+\n$/,
    );
  });
});
