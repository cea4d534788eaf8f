/**
 * `twlab exporter --all-namespaces` on a host that looks like a container host
 * (test/helpers/containers.ts: Docker, Kubernetes/containerd and Podman namespaces, each with its
 * own port range and TIME-WAIT sockets), scraped by a real Prometheus (/usr/bin/prometheus) that
 * runs with the exporters in a sandbox host of their own: per-namespace socket counts read back
 * through /api/v1/query must equal `ss -tan` in each namespace, with the owner's labels. Then the
 * cardinality bound (--max-namespaces 1: the namespace most at risk plus netns="other") and
 * --netns PID. The pure parts (labels, folding) are checked on their own.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandbox, type Sandbox } from '../../src/sandbox/index.js';
import { netnsLabels } from '../../src/exporter/host-scrape.js';
import { foldNamespaces, OTHER, type NamespaceSample } from '../../src/exporter/sample.js';
import type { NetnsInfo } from '../../src/observe/namespaces.js';
import { describeNs } from '../helpers/sandbox.js';
import { runCli } from '../helpers/cli.js';
import {
  containerSpecs,
  expectBetweenSs,
  ssByState,
  startContainers,
  stopContainers,
} from '../helpers/containers.js';
import { getIn, series, startExporterIn, startPrometheusIn } from './exporter-sandbox.js';

const ns = (over: Partial<NetnsInfo>): NetnsInfo => ({
  inode: 4026532001,
  path: '/proc/1/ns/net',
  paths: [],
  mounts: [],
  processes: [],
  processCount: 1,
  owner: null,
  self: false,
  host: false,
  ...over,
});

describe('netnsLabels', () => {
  it('names a pod container by container and pod, a service by unit, the host as host', () => {
    const pod = { uid: 'u-1', qos: 'burstable' as const, name: 'api', namespace: 'shop' };
    expect(
      netnsLabels(ns({ owner: { kind: 'container', runtime: 'containerd', id: 'c1', name: 'app', pod } })),
    ).toEqual({
      netns: '4026532001',
      owner_kind: 'container',
      runtime: 'containerd',
      container_id: 'c1',
      container_name: 'app',
      pod_uid: 'u-1',
      pod_name: 'api',
      pod_namespace: 'shop',
    });
    expect(
      netnsLabels(
        ns({
          owner: {
            kind: 'pod',
            runtime: null,
            id: 'u-1',
            name: null,
            pod: { ...pod, name: null, namespace: null },
          },
        }),
      ),
    ).toEqual({ netns: '4026532001', owner_kind: 'pod', pod_uid: 'u-1' });
    expect(
      netnsLabels(
        ns({ owner: { kind: 'service', runtime: 'systemd', id: 'nginx.service', name: null, pod: null } }),
      ),
    ).toEqual({ netns: '4026532001', owner_kind: 'service', runtime: 'systemd', service: 'nginx.service' });
    expect(netnsLabels(ns({ host: true }))).toEqual({ netns: '4026532001', owner_kind: 'host' });
    expect(netnsLabels(ns({}))).toEqual({ netns: '4026532001' });
  });
});

describe('foldNamespaces', () => {
  const sample = (tw: number, inUse: number, secs: number | null, orphan: number): NamespaceSample => ({
    labels: { netns: String(tw) },
    byState: { 'TIME-WAIT': tw, ESTAB: 2 },
    histogram: { buckets: new Float64Array(9).fill(tw), sum: tw * 30, count: tw },
    pressure: [
      {
        remote: '10.0.0.5:443',
        local: '10.1.0.2',
        inUse,
        timeWait: inUse,
        rangeSize: 1000,
        ratio: inUse / 1000,
        ratePerSec: 1,
        secondsToExhaustion: secs,
      },
    ],
    destinations: 1,
    usable: 1000,
    sockstat: { tw, orphan, inuse: 2 },
    tcpExt: { TW: tw },
    sysctls: { tcp_tw_reuse: '1' },
  });
  it('sums counts and histograms, folds every destination into one, keeps no range or sysctls', () => {
    const f = foldNamespaces([sample(10, 100, null, 3), sample(20, 500, 40, 3)]);
    expect(f.labels).toEqual({ netns: OTHER });
    expect(f.byState).toEqual({ 'TIME-WAIT': 30, ESTAB: 4 });
    expect([...f.histogram.buckets]).toEqual(new Array(9).fill(30));
    expect(f.histogram).toMatchObject({ sum: 900, count: 30 });
    expect(f.pressure).toHaveLength(1);
    expect(f.pressure[0]).toMatchObject({
      local: OTHER,
      remote: OTHER,
      inUse: 600,
      ratio: 0.5,
      secondsToExhaustion: 40,
      ratePerSec: 2,
    });
    expect(f.sockstat).toEqual({ tw: 30, orphan: 3, inuse: 4 });
    expect(f.tcpExt).toEqual({ TW: 30 });
    expect(f.destinations).toBe(2);
    expect(f.usable).toBeUndefined();
    expect(f.sysctls).toEqual({});
  });
});

describe('twlab exporter -A / --netns usage errors', () => {
  it('refuses --max-namespaces without -A, -A with --netns, and a --netns that is no namespace', async () => {
    for (const args of [
      ['--max-namespaces', '5'],
      ['-A', '--netns', '1'],
      ['-A', '--max-namespaces', '0'],
      ['--netns', 'eth0'],
      ['--netns', '/etc/hostname'],
      ['--netns', '999999999'],
    ]) {
      const r = await runCli(['exporter', '--listen', '127.0.0.1:0', '--duration', '1', ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
    }
  });
});

interface QueryResponse {
  status: string;
  data: { result: { metric: Record<string, string>; value: [number, string] }[] };
}

// Below the sandbox's ephemeral range (32768-60999): nothing else can hold these.
const EXPORTER_PORT = 9000 + Math.floor(Math.random() * 1000);
const PROM_PORT = 10000 + Math.floor(Math.random() * 1000);

describeNs('twlab exporter --all-namespaces scraped by a real Prometheus', () => {
  const containers = containerSpecs();
  let mon: Sandbox;
  let dir: string;
  let folded: { url: string };
  let one: { url: string };
  const children: ChildProcess[] = [];
  let prom: ReturnType<typeof startPrometheusIn>;

  let ssAtStart: Record<string, number>[] = [];

  beforeAll(async () => {
    await startContainers(containers);
    ssAtStart = await Promise.all(containers.map((c) => ssByState(c.box!.client)));
    mon = await createSandbox({ hosts: 1 });
    dir = mkdtempSync(join(tmpdir(), 'twlab-prom-A-'));
    const h = mon.client;
    const [all, f, o] = await Promise.all([
      startExporterIn(h, `127.0.0.1:${EXPORTER_PORT}`, ['-A', '--max-namespaces', '1000']),
      startExporterIn(h, '127.0.0.1:0', ['-A', '--max-namespaces', '1', '--window', '60']),
      startExporterIn(h, '127.0.0.1:0', ['--netns', String(containers[1]!.box!.client.pid)]),
    ]);
    children.push(all.child, f.child, o.child);
    folded = f;
    one = o;
    // A scrape enters every namespace on this (busy, shared) machine: give it time.
    prom = startPrometheusIn(h, {
      dir,
      listen: `127.0.0.1:${PROM_PORT}`,
      target: `127.0.0.1:${EXPORTER_PORT}`,
      intervalS: 2,
    });
    children.push(prom.child);
  }, 120_000);

  afterAll(async () => {
    for (const c of children) c.stdin?.end();
    await mon?.close();
    await stopContainers(containers);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('gives each namespace its sockets per state through /api/v1/query, equal to ss there, with its owner', async () => {
    const inodes = containers.map((c) => String(c.inode));
    const query = encodeURIComponent(`twlab_tcp_sockets{job="twlab",netns=~"${inodes.join('|')}"}`);
    const url = `http://127.0.0.1:${PROM_PORT}/api/v1/query?query=${query}`;
    // ss before Prometheus's first scrape (in beforeAll) and after the query: TIME-WAIT only
    // expires between, so the query lies between.
    let result: QueryResponse['data']['result'] = [];
    const deadline = Date.now() + 40_000;
    while (new Set(result.map((r) => r.metric['netns'])).size < inodes.length && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      try {
        const res = await getIn(mon.client, url);
        if (res.status === 200) result = (JSON.parse(res.body) as QueryResponse).data.result;
      } catch {
        // Prometheus not listening yet
      }
    }
    expect(new Set(result.map((r) => r.metric['netns'])), `prometheus said: ${prom.stderr()}`).toEqual(
      new Set(inodes),
    );
    for (const [i, c] of containers.entries()) {
      const ss = await ssByState(c.box!.client);
      const mine = result.filter((r) => r.metric['netns'] === String(c.inode));
      const byState = Object.fromEntries(
        mine.filter((r) => r.value[1] !== '0').map((r) => [r.metric['state'], Number(r.value[1])]),
      );
      expectBetweenSs(byState, ssAtStart[i]!, ss, c.name);
      expect(byState['TIME-WAIT'], c.name).toBeGreaterThanOrEqual(c.tw - 3);
      const labels = mine[0]!.metric;
      expect(labels['owner_kind'], c.name).toBe('container');
      expect(labels['container_id'], c.name).toBe(c.id);
      expect(labels['runtime'], c.name).toBe(
        { docker: 'docker', kubepods: 'containerd', podman: 'podman' }[c.name],
      );
      expect(labels['pod_uid'], c.name).toBe(c.podUid);
    }
    const up = JSON.parse(
      (await getIn(mon.client, `http://127.0.0.1:${PROM_PORT}/api/v1/query?query=up`)).body,
    ) as QueryResponse;
    expect(up.data.result.find((r) => r.metric['job'] === 'twlab')?.value[1]).toBe('1');
  }, 60_000);

  it('--max-namespaces 1: the namespace about to run out, and one netns="other" summing the rest', async () => {
    const res = await getIn(mon.client, folded.url);
    expect(res.status).toBe(200);
    const tw = series(res.body, 'twlab_tcp_sockets').filter((s) => s.labels['state'] === 'TIME-WAIT');
    expect(tw.map((s) => s.labels['netns'])).toHaveLength(2);
    const [first, other] = tw;
    expect(other!.labels).toEqual({ netns: OTHER, state: 'TIME-WAIT' });
    // Ours are in there, one way or the other (TIME-WAIT lasts 60 s: they all still are).
    const ours = (await Promise.all(containers.map((c) => ssByState(c.box!.client)))).reduce(
      (a, s) => a + (s['TIME-WAIT'] ?? 0),
      0,
    );
    expect(first!.value + other!.value).toBeGreaterThanOrEqual(ours);
    // Docker's (150 of 200 ports, ~20 s left) comes first unless another runs out sooner still.
    const soon = new Map(
      series(res.body, 'twlab_netns_port_exhaustion_seconds').map((s) => [s.labels['netns'], s.value]),
    );
    const docker = containers[0]!;
    if (first!.labels['netns'] !== String(docker.inode)) {
      expect(soon.get(first!.labels['netns'])).toBeLessThan(30);
    } else {
      expect(soon.get(String(docker.inode))).toBeLessThan(30);
      expect(first!.labels['container_id']).toBe(docker.id);
    }
    // Per-destination series: the top namespace's own, and exactly one for all of "other".
    const otherDests = series(res.body, 'twlab_ports_in_use').filter((s) => s.labels['netns'] === OTHER);
    expect(otherDests.map((s) => [s.labels['local'], s.labels['remote']])).toEqual([[OTHER, OTHER]]);
    const seen = series(res.body, 'twlab_netns_seen')[0]!.value;
    const skipped = series(res.body, 'twlab_netns_skipped').reduce((a, s) => a + s.value, 0);
    expect(series(res.body, 'twlab_netns_folded')[0]!.value).toBe(seen - skipped - 1);
    expect(series(res.body, 'twlab_sysctl').some((s) => s.labels['netns'] === OTHER)).toBe(false);
  });

  it('--netns PID: that namespace alone, its histogram and sysctls its own', async () => {
    const kube = containers[1]!;
    const before = await ssByState(kube.box!.client);
    const res = await getIn(mon.client, one.url);
    expect(res.status).toBe(200);
    const ss = await ssByState(kube.box!.client);
    const tw = series(res.body, 'twlab_tcp_sockets').filter((s) => s.labels['state'] === 'TIME-WAIT');
    expect(tw.map((s) => s.labels['netns'])).toEqual([String(kube.inode)]);
    // TIME-WAIT only expires between the two ss readings around the scrape.
    expectBetweenSs({ 'TIME-WAIT': tw[0]!.value }, { 'TIME-WAIT': before['TIME-WAIT'] ?? 0 }, ss, 'kube');
    expect(tw[0]!.labels['pod_uid']).toBe(kube.podUid);
    expect(series(res.body, 'twlab_time_wait_remaining_seconds_count')[0]!.value).toBe(tw[0]!.value);
    const sysctl = new Map(series(res.body, 'twlab_sysctl').map((s) => [s.labels['name'], s.value]));
    expect(sysctl.get('net.ipv4.tcp_tw_reuse')).toBe(kube.twReuse);
    expect(sysctl.get('net.ipv4.ip_local_port_range.low')).toBe(kube.range.low);
    expect(series(res.body, 'twlab_ephemeral_ports_usable')[0]!.value).toBe(
      kube.range.high - kube.range.low + 1,
    );
  });
});
