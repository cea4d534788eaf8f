/**
 * readConntrack in the NAT sandbox's router, held to what `conntrack -L` / `conntrack -S` (the
 * conntrack-tools, their own netlink code) say about the same table, with TCP in two states,
 * UDP, and NAT ports; the /proc fallback must say the same, and is taken when ctnetlink is denied.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { distPath, twlabArgv } from '../../src/common/paths.js';
import type { ConntrackSummary } from '../../src/observe/conntrack.js';
import { createSandbox, remote } from '../../src/sandbox/index.js';
import { CONNTRACK } from '../../src/traffic/remote.js';
import type { Sandbox, SandboxHost } from '../../src/sandbox/index.js';
import {
  churnAllSucceed,
  expectClosedAndOpen,
  waitForConntrackEntries,
  waitForConntrackSettled,
} from '../helpers/conntrack.js';
import { describeNs } from '../helpers/sandbox.js';

const RANGE = { low: 40000, high: 40099 };

async function listening(host: SandboxHost, argv: string[]): Promise<void> {
  const child = host.spawn(twlabArgv(...argv));
  await new Promise<void>((resolve) =>
    child.stdout!.setEncoding('utf8').on('data', (d: string) => d.includes('listening') && resolve()),
  );
}

/** conntrack -L's lines: protocol, TCP state, NAT port per destination, counted by us. */
function fromConntrackTool(text: string): {
  byProtocol: Record<string, number>;
  tcpByState: Record<string, number>;
  natPorts: Record<string, number>;
} {
  const byProtocol: Record<string, number> = {};
  const tcpByState: Record<string, number> = {};
  const ports: Record<string, Set<string>> = {};
  for (const line of text.trim().split('\n')) {
    const f = line.split(/\s+/);
    byProtocol[f[0]!] = (byProtocol[f[0]!] ?? 0) + 1;
    if (f[0] === 'tcp') tcpByState[f[3]!] = (tcpByState[f[3]!] ?? 0) + 1;
    const m = /src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+) .*src=\S+ dst=(\S+) sport=\d+ dport=(\d+)/.exec(
      line,
    );
    if (m && m[5] === '203.0.113.1') (ports[`${f[0]} ${m[2]}:${m[4]}`] ??= new Set()).add(m[6]!);
  }
  return {
    byProtocol,
    tcpByState,
    natPorts: Object.fromEntries(Object.entries(ports).map(([k, s]) => [k, s.size])),
  };
}

/** conntrack -S: the named counters summed over the cpu= lines. */
function statsFromTool(text: string): Record<string, number> {
  const sum: Record<string, number> = {};
  for (const m of text.matchAll(/(\w+)=(\d+)/g))
    if (m[1] !== 'cpu') sum[m[1]!] = (sum[m[1]!] ?? 0) + Number(m[2]);
  return sum;
}

describeNs('readConntrack in a NAT router', () => {
  let box: Sandbox;
  beforeAll(async () => {
    box = await createSandbox({ nat: { ports: RANGE } });
    // The held connections must stay ESTABLISHED through the file: serve's idle timeout (10 s by
    // default) would close them on a loaded machine, and conntrack would show CLOSE_WAIT.
    await listening(box.server, [
      'serve',
      '--listen',
      '203.0.113.2:8080',
      '--duration',
      '120',
      '--idle-timeout',
      '120000',
    ]);
    await listening(box.server, ['serve', '--udp', '--listen', '203.0.113.2:8081', '--duration', '120']);
    await churnAllSucceed(box.client, '203.0.113.2:8080', 30);
    // Two connections held open: ESTABLISHED beside the closed ones' TIME_WAIT.
    const holder = box.client.spawn([
      'python3',
      '-c',
      "import socket,time\nss=[socket.create_connection(('203.0.113.2',8080)) for _ in range(2)]\nprint('open',flush=True)\ntime.sleep(120)",
    ]);
    await new Promise<void>((resolve) =>
      holder.stdout!.setEncoding('utf8').on('data', (d: string) => d.includes('open') && resolve()),
    );
    await waitForConntrackSettled(box.router!, '203.0.113.2', { closed: 30, open: 2 });
    // UDP last: unanswered, its entries live nf_conntrack_udp_timeout (30 s) from now.
    const udp = await box.client.exec(
      twlabArgv('churn', '--udp', '--to', '203.0.113.2:8081', '--count', '7'),
    );
    expect(udp.code, udp.stderr).toBe(0);
    await waitForConntrackEntries(box.router!, ['-p', 'udp'], 7);
  }, 60_000);
  afterAll(async () => box?.close());

  it('netlink and /proc give what conntrack -L and -S give', async () => {
    const router = box.router!;
    const [viaNetlink, viaProc, list, stats] = await Promise.all([
      remote(router, CONNTRACK).readConntrack({ natRange: RANGE }),
      remote(router, CONNTRACK).readConntrack({ source: 'procfs', natRange: RANGE }),
      router.exec(['conntrack', '-L']),
      router.exec(['conntrack', '-S']),
    ]);
    const tool = fromConntrackTool(list.stdout);
    expect(tool.byProtocol).toEqual({ tcp: 32, udp: 7 });
    expectClosedAndOpen(tool.tcpByState, { closed: 30, open: 2 });
    for (const r of [viaNetlink, viaProc]) {
      expect(r.byProtocol).toEqual(tool.byProtocol);
      expect(r.tcpByState).toEqual(tool.tcpByState);
      expect(r.entries).toBe(39);
      expect(r.count).toBe(39);
      expect(
        Object.fromEntries(r.natPorts.map((n) => [`${n.protocol} ${n.destination}`, n.portsUsed])),
      ).toEqual(tool.natPorts);
      for (const n of r.natPorts) {
        expect(n.natAddress).toBe('203.0.113.1');
        expect(n.lowestPort).toBeGreaterThanOrEqual(RANGE.low);
        expect(n.highestPort).toBeLessThanOrEqual(RANGE.high);
        expect(n.rangeSize).toBe(100);
      }
    }
    expect(viaNetlink.source).toBe('netlink');
    expect(viaProc.source).toBe('procfs');
    const s = statsFromTool(stats.stdout);
    // found only grows; nothing ran between the reads but the reads themselves.
    expect(viaNetlink.stats).toMatchObject({
      insertFailed: s['insert_failed'],
      drop: s['drop'],
      earlyDrop: s['early_drop'],
      invalid: s['invalid'],
      clashResolve: s['clash_resolve'],
    });
    expect(viaProc.stats).toEqual(viaNetlink.stats);
    expect(viaNetlink.stats.found).toBe(s['found']);
  });

  it('falls back to /proc, and says so, where ctnetlink is denied (no CAP_NET_ADMIN)', async () => {
    const script = `import(${JSON.stringify(distPath('observe/conntrack.js'))}).then((m) => console.log(JSON.stringify(m.readConntrack())))`;
    const before = await box.router!.exec(['conntrack', '-L']);
    const r = await box.router!.exec([
      'setpriv',
      '--bounding-set=-net_admin',
      '--inh-caps=-net_admin',
      '--',
      process.execPath,
      '-e',
      script,
    ]);
    const after = await box.router!.exec(['conntrack', '-L']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as ConntrackSummary;
    expect(out.source).toBe('procfs');
    expect(out.fallbackReason).toBe('ctnetlink denied (EPERM)');
    expectClosedAndOpen(out.tcpByState, { closed: 30, open: 2 });
    // The table as conntrack -L saw it just before and just after (a CLOSE entry lives 10 s).
    const seen = [fromConntrackTool(before.stdout).tcpByState, fromConntrackTool(after.stdout).tcpByState];
    expect(seen).toContainEqual(out.tcpByState);
  });
});
