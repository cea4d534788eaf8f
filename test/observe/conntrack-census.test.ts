/**
 * census, doctor and the exporter in a namespace that NATs (the NAT sandbox's router), held to
 * what `conntrack -L` says there: 30 closed connections (TIME_WAIT) and 60 held open hold 90 of
 * the NAT's 100 ports. A namespace without conntrack entries gets no conntrack section. The
 * doctor's conntrack judges are pure functions: both outcomes of each are checked on numbers.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { twlabArgv } from '../../src/common/paths.js';
import type { CensusResult } from '../../src/observe/census.js';
import type { ConntrackSummary } from '../../src/observe/conntrack.js';
import { emptyStats } from '../../src/observe/conntrack-netlink.js';
import { conntrackFindings } from '../../src/observe/doctor-conntrack.js';
import type { DoctorResult } from '../../src/observe/doctor.js';
import { createSandbox } from '../../src/sandbox/index.js';
import type { Sandbox, SandboxHost } from '../../src/sandbox/index.js';
import { getIn, startExporterIn, startPrometheusIn } from '../exporter/exporter-sandbox.js';
import { runCli } from '../helpers/cli.js';
import { churnAllSucceed, expectClosedAndOpen, waitForConntrackSettled } from '../helpers/conntrack.js';
import { describeNs } from '../helpers/sandbox.js';

const RANGE = { low: 40000, high: 40099 };

async function json<T>(host: SandboxHost, args: string[]): Promise<T> {
  const r = await host.exec(twlabArgv(...args));
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as T;
}

/** conntrack -L towards the server, counted here: TCP states and distinct NAT ports. */
async function tool(router: SandboxHost): Promise<{ states: Record<string, number>; natPorts: number }> {
  const out = (await router.exec(['conntrack', '-L', '-p', 'tcp', '-d', '203.0.113.2'])).stdout;
  const states: Record<string, number> = {};
  const ports = new Set<string>();
  for (const line of out.trim().split('\n')) {
    const f = line.split(/\s+/);
    states[f[3]!] = (states[f[3]!] ?? 0) + 1;
    ports.add(/dst=203\.0\.113\.1 sport=8080 dport=(\d+)/.exec(line)![1]!);
  }
  return { states, natPorts: ports.size };
}

describeNs('census, doctor and exporter where the namespace NATs', () => {
  let box: Sandbox;
  beforeAll(async () => {
    box = await createSandbox({ nat: { ports: RANGE } });
    // The 60 held connections must stay ESTABLISHED through the file: serve's idle timeout (10 s
    // by default) closed them on a loaded machine (conntrack showed CLOSE_WAIT 60).
    const serve = box.server.spawn(
      twlabArgv('serve', '--listen', '203.0.113.2:8080', '--duration', '120', '--idle-timeout', '120000'),
    );
    await new Promise<void>((resolve) =>
      serve.stdout!.setEncoding('utf8').on('data', (d: string) => d.includes('listening') && resolve()),
    );
    await churnAllSucceed(box.client, '203.0.113.2:8080', 30);
    const holder = box.client.spawn([
      'python3',
      '-c',
      "import socket,time\nss=[socket.create_connection(('203.0.113.2',8080)) for _ in range(60)]\nprint('open',flush=True)\ntime.sleep(120)",
    ]);
    await new Promise<void>((resolve) =>
      holder.stdout!.setEncoding('utf8').on('data', (d: string) => d.includes('open') && resolve()),
    );
    await waitForConntrackSettled(box.router!, '203.0.113.2', { closed: 30, open: 60 });
  }, 60_000);
  afterAll(async () => box?.close());

  it('census --json has a conntrack section equal to conntrack -L; none where nothing is tracked', async () => {
    const router = box.router!;
    const census = await json<CensusResult>(router, ['census', '--json']);
    const t = await tool(router);
    expectClosedAndOpen(t.states, { closed: 30, open: 60 });
    const ct = census.conntrack!;
    expect(ct.source).toBe('netlink');
    expect(ct.tcpByState).toMatchObject(t.states);
    expect(ct.natPorts[0]).toMatchObject({
      natAddress: '203.0.113.1',
      destination: '203.0.113.2:8080',
      portsUsed: t.natPorts,
      closed: 30,
    });
    const text = await router.exec(twlabArgv('census'));
    expect(text.stdout).toMatch(/^Conntrack: \d+ entries/m);
    const client = await json<CensusResult>(box.client, ['census', '--json']);
    expect(client.conntrack).toBeUndefined();
  });

  it('census --netns and -A from the host read the router namespace: its conntrack equals conntrack -L', async () => {
    const router = box.router!;
    const cli = async (args: string[]): Promise<string> => {
      const r = await runCli(args);
      expect(r.code, r.stderr).toBe(0);
      return r.stdout;
    };
    const one = JSON.parse(await cli(['census', '--netns', String(router.pid), '--json'])) as CensusResult;
    const inode = Number(/\d+/.exec(readlinkSync(`/proc/${router.pid}/ns/net`))![0]);
    const all = JSON.parse(await cli(['census', '-A', '--json'])) as {
      namespaces: Array<CensusResult & { netns: { inode: number } }>;
    };
    const t = await tool(router);
    const fromAll = all.namespaces.find((n) => n.netns.inode === inode)!;
    for (const ct of [one.conntrack!, fromAll.conntrack!]) {
      expect(ct.tcpByState).toMatchObject(t.states);
      expect(ct.natPorts[0]?.portsUsed).toBe(t.natPorts);
    }
  });

  it('doctor --nat-range: the NAT pool finding with the ports conntrack -L shows held', async () => {
    const d = await json<DoctorResult>(box.router!, ['doctor', '--json', '--nat-range', '40000-40099']);
    const t = await tool(box.router!);
    const f = d.findings.find((x) => x.id === 'nat-port-pressure')!;
    expect(f.evidence).toMatchObject({
      portsHeld: t.natPorts,
      heldByClosed: 30,
      poolSize: 100,
      poolKnown: true,
    });
    // 60 of 100 ports held by open connections: those cannot be handed out again.
    expect(f.severity).toBe('warning');
    expect(f.title).toMatch(/open connections are using up the pool/);
    // Without the range, the pool is nf_nat's 1024-65535, of which 90 ports are nothing.
    const plain = await json<DoctorResult>(box.router!, ['doctor', '--json']);
    expect(plain.findings.some((x) => x.id === 'nat-port-pressure')).toBe(false);
  });

  it("a scrape of the router's exporter equals conntrack -L", async () => {
    const ex = box.router!.spawn(twlabArgv('exporter', '--listen', '127.0.0.1:9477'));
    try {
      await new Promise<void>((resolve) =>
        ex.stderr!.setEncoding('utf8').on('data', (d: string) => d.includes('serving') && resolve()),
      );
      const m = await box.router!.exec(['curl', '-sf', 'http://127.0.0.1:9477/metrics']);
      expect(m.code).toBe(0);
      const t = await tool(box.router!);
      const metric = (re: RegExp): number => Number(re.exec(m.stdout)![1]);
      expect(metric(/^twlab_conntrack_tcp_entries\{state="TIME_WAIT"\} (\d+)$/m)).toBe(t.states['TIME_WAIT']);
      expect(
        metric(
          /^twlab_conntrack_nat_ports_held\{protocol="tcp",nat_address="203\.0\.113\.1",destination="203\.0\.113\.2:8080"\} (\d+)$/m,
        ),
      ).toBe(t.natPorts);
      expect(m.stdout).toMatch(/^twlab_conntrack_stat_total\{name="insert_failed"\} 0$/m);
    } finally {
      ex.kill('SIGINT');
    }
  });
});

describeNs('the NAT ports held, scraped by a real Prometheus in the router', () => {
  let box: Sandbox;
  let dir: string;
  const children: ChildProcess[] = [];
  beforeAll(async () => {
    box = await createSandbox({ nat: { ports: RANGE } });
    dir = mkdtempSync(join(tmpdir(), 'twlab-prom-nat-'));
  });
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await box?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('twlab_conntrack_nat_ports_held through /api/v1/query equals conntrack -L', async () => {
    const serve = box.server.spawn(twlabArgv('serve', '--listen', '203.0.113.2:8080', '--duration', '120'));
    children.push(serve);
    await new Promise<void>((resolve) =>
      serve.stdout!.setEncoding('utf8').on('data', (d: string) => d.includes('listening') && resolve()),
    );
    const churn = await box.client.exec(twlabArgv('churn', '--to', '203.0.113.2:8080', '--count', '45'));
    expect(churn.code, churn.stderr).toBe(0);
    const router = box.router!;
    const exp = await startExporterIn(router, '127.0.0.1:9477');
    children.push(exp.child);
    const prom = startPrometheusIn(router, {
      dir,
      listen: '127.0.0.1:9090',
      target: '127.0.0.1:9477',
      intervalS: 1,
    });
    children.push(prom.child);
    // Only the NAT's entries towards the server: Prometheus's own loopback connections are
    // tracked in the router too, but they have no NAT port.
    const query = encodeURIComponent(
      'twlab_conntrack_nat_ports_held{job="twlab",destination="203.0.113.2:8080"}',
    );
    let seen: number | undefined;
    for (let i = 0; i < 60 && seen === undefined; i++) {
      await new Promise((r) => setTimeout(r, 500));
      try {
        const res = await getIn(router, `http://127.0.0.1:9090/api/v1/query?query=${query}`);
        const first = (JSON.parse(res.body) as { data: { result: { value: [number, string] }[] } }).data
          .result[0];
        if (res.status === 200 && first) seen = Number(first.value[1]);
      } catch {
        // Prometheus not up yet
      }
    }
    expect(seen).toBeDefined();
    const t = await tool(router);
    expect(t.natPorts).toBeGreaterThan(0);
    expect(seen).toBe(t.natPorts);
  }, 90_000);
});

describe('doctor conntrack judges (both outcomes)', () => {
  const base: ConntrackSummary = {
    source: 'netlink',
    entries: 10,
    count: 10,
    max: 1000,
    byProtocol: { tcp: 10 },
    tcpByState: { TIME_WAIT: 10 },
    natPorts: [],
    stats: emptyStats(),
  };
  const ids = (ct: ConntrackSummary): string[] => conntrackFindings(ct).map((f) => f.id);

  it('table fill: none at 1%, critical at 95% with the TIME_WAIT timeout as first fix', () => {
    expect(ids(base)).toEqual([]);
    const full = conntrackFindings({ ...base, count: 950, entries: 950, tcpByState: { TIME_WAIT: 950 } });
    expect(full[0]).toMatchObject({ id: 'conntrack-table-fill', severity: 'critical' });
    expect(full[0]!.fixes[0]!.setting).toBe('net.netfilter.nf_conntrack_tcp_timeout_time_wait');
  });

  it('insert failures and drops: a finding only when the kernel counted some', () => {
    expect(ids({ ...base, stats: { ...base.stats, insertFailed: 1, drop: 1 } })).toEqual([
      'conntrack-insert-failed',
    ]);
  });

  it('NAT pool: closed ports alone are a warning about stalls, open ones a failure; small use none', () => {
    const nat = (portsUsed: number, closed: number): ConntrackSummary => ({
      ...base,
      natPorts: [
        {
          protocol: 'tcp',
          natAddress: '203.0.113.1',
          destination: '203.0.113.2:8080',
          portsUsed,
          closed,
          lowestPort: 40000,
          highestPort: 40099,
          range: RANGE,
          rangeSize: 100,
        },
      ],
    });
    expect(ids(nat(5, 5))).toEqual([]);
    expect(conntrackFindings(nat(95, 95))[0]).toMatchObject({
      severity: 'warning',
      title: expect.stringMatching(/stall 1 s/),
    });
    expect(conntrackFindings(nat(95, 0))[0]).toMatchObject({
      severity: 'critical',
      title: expect.stringMatching(/will fail/),
    });
  });
});
