/**
 * `twlab census --all-namespaces` on a host that looks like a container host: three namespaces,
 * each held by processes in a cgroup named as Docker, containerd under Kubernetes and Podman
 * name theirs, each with its own port range, tcp_tw_reuse and number of TIME-WAIT sockets, and a
 * fourth namespace kept alive only by a /run/netns bind mount. Every count is held to `ss -tan`
 * run inside that namespace; the namespace about to run out of ports must come first.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandbox } from '../../src/sandbox/index.js';
import type { HostCensus, NetnsCensus } from '../../src/observe/census-all.js';
import type { HostDoctor } from '../../src/observe/doctor-all.js';
import { censusOfNetns } from '../../src/observe/census-all.js';
import { bareNetns } from '../../src/observe/netns-read.js';
import { netnsInodeOf } from '../../src/sockets/netns.js';
import { CLI, runCli, type CliResult } from '../helpers/cli.js';
import { bindNetns, unbindNetns } from '../helpers/run-netns.js';
import { describeNs } from '../helpers/sandbox.js';
import {
  containerSpecs,
  expectBetweenSs,
  ssByState,
  startContainers,
  stopContainers,
  type Container,
} from '../helpers/containers.js';

const containers = containerSpecs();
const podUid = containers[1]!.podUid;

/** The CLI as an unprivileged user (no capabilities). */
function runCliAs(uid: number, args: string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'setpriv',
      [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', process.execPath, CLI, ...args],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

describeNs('census --all-namespaces on a host of containers', () => {
  let mountPath = '';
  let mountedInode = 0;
  let host: HostCensus;
  const ssBefore = new Map<number, Record<string, number>>();
  const ss = new Map<number, Record<string, number>>();

  beforeAll(async () => {
    await startContainers(containers);
    // A namespace that only a bind mount keeps: made by a sandbox, which then goes away.
    const keep = await createSandbox({ hosts: 1 });
    mountPath = bindNetns(keep.client.pid);
    mountedInode = netnsInodeOf(mountPath);
    await keep.close();

    // ss around the census: the fixtures' TIME-WAIT sockets only expire meanwhile (60 s after
    // they were made, which a loaded machine can reach), so the census lies between the two.
    for (const c of containers) ssBefore.set(c.inode!, await ssByState(c.box!.client));
    const r = await runCli(['census', '--all-namespaces', '--json', '--top', '5', '--window', '60']);
    expect(r.code, r.stderr).toBe(0);
    host = JSON.parse(r.stdout) as HostCensus;
    for (const c of containers) ss.set(c.inode!, await ssByState(c.box!.client));
  }, 120_000);

  afterAll(async () => {
    await stopContainers(containers);
    if (mountPath) unbindNetns(mountPath);
  });

  const find = (inode: number): NetnsCensus | undefined =>
    host.namespaces.find((n) => n.netns.inode === inode);

  it('lists every container namespace with its owner, port range and sysctls', () => {
    for (const c of containers) {
      const n = find(c.inode!);
      expect(n, c.name).toBeDefined();
      expect(n!.access).toBe('setns');
      expect(n!.owner?.id, c.name).toBe(c.id);
      expect(n!.portRange).toMatchObject(c.range);
      expect(n!.sysctls?.['net.ipv4.tcp_tw_reuse']).toBe(String(c.twReuse));
      expect(n!.sysctls?.['net.ipv4.ip_local_port_range']).toBe(`${c.range.low} ${c.range.high}`);
      expect(n!.processCount).toBeGreaterThanOrEqual(2);
    }
    const [docker, kube, podman] = containers.map((c) => find(c.inode!)!);
    expect(docker!.owner).toMatchObject({ kind: 'container', runtime: 'docker', pod: null });
    expect(kube!.owner?.runtime).toBe('containerd');
    expect(kube!.owner?.pod).toMatchObject({ uid: podUid, qos: 'besteffort' });
    expect(podman!.owner).toMatchObject({ kind: 'container', runtime: 'podman' });
  });

  it('counts per state exactly as ss inside each namespace', () => {
    for (const c of containers) {
      const n = find(c.inode!)!;
      expectBetweenSs(n.byState, ssBefore.get(c.inode!)!, ss.get(c.inode!)!, c.name);
      expect(n.timeWait.count, c.name).toBe(n.byState['TIME-WAIT']);
      expect(n.timeWait.count, c.name).toBeGreaterThanOrEqual(c.tw - 3);
    }
  });

  it('puts the namespace about to run out of ports first', () => {
    const order = containers.map((c) => host.namespaces.findIndex((n) => n.netns.inode === c.inode));
    const docker = host.namespaces[order[0]!]!;
    expect(docker.worst?.remote).toBe('127.0.0.1:7000');
    expect(docker.worst?.secondsToExhaustion).not.toBeNull();
    // 150 of 200 ports held, all taken within the 60 s window: 2.5/s, 20 s left.
    expect(docker.worst!.secondsToExhaustion!).toBeLessThan(30);
    expect(order[0]).toBeLessThan(order[1]!);
    expect(order[0]).toBeLessThan(order[2]!);
    // Anything ranked above it (another test's sandbox, say) runs out sooner still.
    for (const n of host.namespaces.slice(0, order[0]))
      expect(n.worst?.secondsToExhaustion ?? Infinity).toBeLessThanOrEqual(
        docker.worst!.secondsToExhaustion!,
      );
  });

  it('finds a namespace that only a /run/netns mount keeps', () => {
    const n = find(mountedInode);
    expect(n).toBeDefined();
    expect(n!.processes).toEqual([]);
    expect(n!.netns.mounts).toContain(mountPath);
    expect(n!.total).toBe(0);
  });

  it('adds up the host totals and lists its own namespace', () => {
    expect(host.host.read).toBe(host.namespaces.length);
    expect(host.host.seen).toBe(host.namespaces.length + host.host.skipped.length);
    expect(host.host.totals.timeWait).toBe(host.namespaces.reduce((s, n) => s + n.timeWait.count, 0));
    expect(host.namespaces.filter((n) => n.netns.self)).toHaveLength(1);
  });

  it('reads one namespace with --netns PID, and filters by state in every namespace', async () => {
    const c = containers[0]!;
    const one = await runCli(['census', '--netns', String(c.box!.client.pid), '--json']);
    expect(one.code, one.stderr).toBe(0);
    const doc = JSON.parse(one.stdout) as NetnsCensus;
    expect(doc.netns.inode).toBe(c.inode);
    expect(doc.owner?.id).toBe(c.id);
    expectBetweenSs(doc.byState, ss.get(c.inode!)!, await ssByState(c.box!.client), c.name);
    const tw = await runCli(['census', '-A', '--state', 'time-wait', '--json']);
    const filtered = JSON.parse(tw.stdout) as HostCensus;
    for (const k of containers) {
      const n = filtered.namespaces.find((x) => x.netns.inode === k.inode)!;
      expect(Object.keys(n.byState)).toEqual(['TIME-WAIT']);
      expect(n.total).toBe(n.timeWait.count);
    }
    expect(filtered.filter).toEqual({ states: ['TIME-WAIT'] });
  });

  it('prints the host table, most at risk first', async () => {
    const r = await runCli(['census', '-A', '--window', '60']);
    expect(r.code, r.stderr).toBe(0);
    const docker = r.stdout.indexOf(String(containers[0]!.inode));
    expect(docker).toBeGreaterThan(0);
    expect(r.stdout.indexOf(String(containers[2]!.inode))).toBeGreaterThan(docker);
    expect(r.stdout).toContain(`docker ${containers[0]!.id.slice(0, 12)}`);
  });

  it('doctor -A: findings per namespace, the one running out first, named by its container', async () => {
    const r = await runCli(['doctor', '-A', '--json', '--window', '60']);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as HostDoctor;
    const idx = (c: Container): number => doc.namespaces.findIndex((n) => n.netns.inode === c.inode);
    const docker = doc.namespaces[idx(containers[0]!)]!;
    expect(docker.owner?.id).toBe(containers[0]!.id);
    expect(docker.findings[0]).toMatchObject({ id: 'port-pressure', severity: 'critical' });
    expect(docker.findings[0]!.evidence['portRange']).toBe('30000-30199');
    // The namespace's own sysctls are the evidence, not twlab's.
    expect(docker.sysctls['tcp_tw_reuse']).toBe('0');
    expect(doc.namespaces[idx(containers[1]!)]!.sysctls['tcp_tw_reuse']).toBe('1');
    expect(idx(containers[0]!)).toBeLessThan(idx(containers[2]!));
    const text = await runCli(['doctor', '-A', '--window', '60']);
    expect(text.stdout).toMatch(
      new RegExp(
        `docker ${containers[0]!.id.slice(0, 12)} \\(netns ${containers[0]!.inode}\\): \\d+ of 200 ports to 127\\.0\\.0\\.1:7000 held, out in`,
      ),
    );
  });

  it('doctor -A --port: who holds the port, in every namespace', async () => {
    const r = await runCli(['doctor', '-A', '--port', '7000', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as HostDoctor;
    for (const c of containers) {
      const n = doc.namespaces.find((x) => x.netns.inode === c.inode)!;
      expect(n.port?.listeners.length, c.name).toBe(1);
    }
    const refused = await runCli(['doctor', '-A', '--port', '7000', '--try-bind']);
    expect(refused.code).toBe(2);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('reports a namespace that disappears while being read as gone', () => {
    const r = censusOfNetns({
      ...bareNetns(1, '/proc/999999999/ns/net'),
      paths: ['/proc/999999998/ns/net'],
    });
    expect(r).toMatchObject({ reason: 'gone' });
  });

  it('without root: reads what it may through /proc/PID/net, and says so', async () => {
    // A process of an unprivileged user in a user and network namespace of its own, inside a
    // sandbox host (so it dies with it): twlab as that user cannot setns into it.
    const h = containers[2]!.box!.client;
    const child = h.spawn([
      'setpriv',
      '--reuid=65534',
      '--regid=65534',
      '--clear-groups',
      'unshare',
      '-Urn',
      'python3',
      '-c',
      'import socket,time\ns=socket.socket();s.bind(("127.0.0.1",7777));s.listen();print("ready",flush=True);time.sleep(30)',
    ]);
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    const r = await runCliAs(65534, ['census', '-A', '--json']);
    child.kill('SIGKILL');
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as HostCensus;
    const fallback = doc.namespaces.filter((n) => n.access === 'procfs');
    expect(fallback.length).toBeGreaterThanOrEqual(1);
    const listener = fallback.find((n) => n.byState['LISTEN'] === 1);
    expect(listener?.portRangeAssumed).toBe(true);
    expect(listener?.sysctls).toBeNull();
    expect(r.stderr).toMatch(/setns/);
  });
});

describe('--netns and -A: bad input is one line and exit 2', () => {
  it.each([
    [['census', '--netns', 'abc'], /--netns: 'abc' is not a PID or an absolute path/],
    [['census', '--netns', 'a\nb'], /--netns: 'a\\nb' is not a PID/],
    [['census', '--netns', '4194304'], /no such process or file/], // pids are below PID_MAX_LIMIT
    [['census', '--netns', '/etc/hostname'], /not a network namespace/],
    [['census', '-A', '--netns', '1'], /exclude each other/],
    [['doctor', '--netns', 'relative/path'], /is not a PID or an absolute path/],
    [['doctor', '--netns', String(process.pid), '--try-bind', '--port', '80'], /--try-bind binds a socket/],
  ])('%j', async (args, message) => {
    const r = await runCli(args);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(message);
  });
});
