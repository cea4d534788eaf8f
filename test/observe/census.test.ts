/**
 * twlab census against ss, in a fresh namespace: K sockets in each of several states (thousands
 * in TIME-WAIT), counted by `twlab census --json` (netlink, and the /proc fallback) and by
 * `ss -tan` run in the same host right after. The fixture (census-fixture.py) holds every
 * socket while both look, so only TIME-WAIT could change between the two, and it lasts 60 s.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createSandbox } from '../../src/sandbox/index.js';
import type { Sandbox } from '../../src/sandbox/index.js';
import type { ChildProcess } from 'node:child_process';
import { twlabArgv } from '../../src/common/paths.js';
import type { CensusResult } from '../../src/observe/census.js';
import { describeNs } from '../helpers/sandbox.js';

const FIXTURE = fileURLToPath(new URL('./census-fixture.py', import.meta.url));
const PORT = 7000;
const K = { tw: 3000, estab: 40, finwait2: 25, synsent: 15 };

/** Per-state counts and rows of `ss -tan` output. */
function parseSs(text: string): { byState: Record<string, number>; rows: string[][] } {
  const byState: Record<string, number> = {};
  const rows = text
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/));
  for (const r of rows) byState[r[0]!] = (byState[r[0]!] ?? 0) + 1;
  return { byState, rows };
}

function portOf(endpoint: string): number {
  return Number(endpoint.slice(endpoint.lastIndexOf(':') + 1));
}

describeNs('twlab census in a sandbox, against ss', () => {
  let box: Sandbox;
  let fixture: ChildProcess;
  let census: CensusResult;
  let procfs: CensusResult;
  let ss: ReturnType<typeof parseSs>;
  let range: { low: number; high: number };
  let reserved: { low: number; high: number };
  /**
   * TIME-WAIT sockets the kernel holds after the fixture's K.tw closes, as ss counts them. Under
   * load this kernel (6.18) was seen to leave K.tw - 1 (one connection without a TIME-WAIT, in ss
   * and the census alike, no FIN-WAIT-2 either); the census is held to ss's count, and that count
   * to at most 3 short of K.tw.
   */
  let twMade: number;

  beforeAll(async () => {
    box = await createSandbox({
      hosts: 1,
      portRange: { low: 20000, high: 45000 },
      // tcp_tw_reuse=0: with the default (2, loopback) connect() takes over TIME-WAIT tuples older
      // than 1 s, so fewer than K would remain.
      sysctls: { 'net.ipv4.ip_local_reserved_ports': '20000-20099', tcp_tw_reuse: 0 },
    });
    const h = box.client;
    fixture = h.spawn(['python3', FIXTURE, JSON.stringify({ port: PORT, ...K, hold_s: 90 })]);
    let out = '';
    let err = '';
    fixture.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    await new Promise<void>((resolve, reject) => {
      fixture.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve();
      });
      fixture.on('exit', (code) => reject(new Error(`fixture exited ${code}: ${err}`)));
    });
    // Back to back, as close to "the same moment" as two processes get.
    const [c, s] = [
      await h.exec(twlabArgv('census', '--json', '--top', '100')),
      await h.exec(['ss', '-tan']),
    ];
    expect(c.code, c.stderr).toBe(0);
    census = JSON.parse(c.stdout) as CensusResult;
    ss = parseSs(s.stdout);
    twMade = ss.byState['TIME-WAIT'] ?? 0;
    if (twMade !== K.tw)
      console.warn(`census test: the kernel holds ${twMade} TIME-WAIT sockets of ${K.tw} closed`);
    const p = await h.exec(twlabArgv('census', '--json', '--source', 'procfs'));
    expect(p.code, p.stderr).toBe(0);
    procfs = JSON.parse(p.stdout) as CensusResult;
    const [lo, hi] = (await h.readSysctl('ip_local_port_range'))!.split(/\s+/).map(Number);
    range = { low: lo!, high: hi! };
    const [rlo, rhi] = (await h.readSysctl('ip_local_reserved_ports'))!.split('-').map(Number);
    reserved = { low: rlo!, high: rhi! };
  }, 120_000);

  afterAll(async () => {
    fixture?.stdin?.end();
    await box?.close();
  });

  it('agrees with ss -tan per state, exactly', () => {
    expect(census.source).toBe('netlink');
    expect(census.byState).toEqual(ss.byState);
    expect(census.total).toBe(ss.rows.length);
  });

  it('saw the states the fixture made, K of each', () => {
    expect(twMade).toBeGreaterThanOrEqual(K.tw - 3);
    expect(twMade).toBeLessThanOrEqual(K.tw);
    expect(census.byState['TIME-WAIT']).toBe(twMade);
    expect(census.byState['SYN-SENT']).toBe(K.synsent);
    expect(census.byState['FIN-WAIT-2']).toBe(K.finwait2);
    expect(census.byState['CLOSE-WAIT']).toBe(K.finwait2);
    expect(census.byState['LISTEN']).toBe(2);
    // estab pairs, plus the one connection that fills the backlog-0 listener (both ends).
    expect(census.byState['ESTAB']).toBe(2 * K.estab + 2);
  });

  it('gives every TIME-WAIT socket a time left within (0, 60 s]', () => {
    expect(census.timeWait.count).toBe(twMade);
    const { min, p50, max } = census.timeWait.remainingMs;
    expect(min).toBeGreaterThan(0);
    expect(max).toBeLessThanOrEqual(60_000);
    expect(p50).toBeGreaterThanOrEqual(min!);
    expect(p50).toBeLessThanOrEqual(max!);
  });

  it('reports pressure on the churned destination: the ports ss shows tied up, out of the namespace range', () => {
    const isEphemeral = (p: number): boolean =>
      p >= range.low && p <= range.high && !(p >= reserved.low && p <= reserved.high);
    const tied = ss.rows.filter(
      (r) => r[4] === `127.0.0.1:${PORT}` && r[3]!.startsWith('127.0.0.1:') && isEphemeral(portOf(r[3]!)),
    ).length;
    const entry = census.pressure.find((p) => p.remote === `127.0.0.1:${PORT}` && p.local === '127.0.0.1');
    expect(entry).toBeDefined();
    expect(tied).toBeGreaterThanOrEqual(twMade);
    expect(entry!.inUse).toBe(tied);
    expect(entry!.timeWait).toBe(twMade);
    expect(entry!.rangeSize).toBe(range.high - range.low + 1 - (reserved.high - reserved.low + 1));
    expect(census.portRange).toMatchObject({ ...range, usable: entry!.rangeSize });
    expect(entry!.ratio).toBeCloseTo(entry!.inUse / entry!.rangeSize, 3);
    // Every TIME-WAIT socket was made in the last few seconds: all inside the 10 s window.
    expect(entry!.ratePerSec).toBeCloseTo(twMade / census.rate.windowSec, 3);
  });

  it('leaves the server side of accepted connections out of pressure', () => {
    // The server ends (local port 7000/7001, a listening port) would each be a "destination"
    // of one port; only the two real destinations remain.
    expect(census.pressureDestinations).toBe(2);
    expect(census.pressure.map((p) => p.remote).sort()).toEqual([
      `127.0.0.1:${PORT}`,
      `127.0.0.1:${PORT + 1}`,
    ]);
  });

  it('shows the kernel counters of this namespace', () => {
    expect(census.counters.sockstat.tw).toBe(twMade);
    expect(census.counters.tcpExt['TW']).toBeGreaterThanOrEqual(twMade);
  });

  it('reads the same table from /proc/net/tcp when asked (the fallback path), and says so', () => {
    expect(procfs.source).toBe('procfs');
    expect(procfs.byState).toEqual(ss.byState);
    expect(procfs.timeWait.remainingMs.min).toBeGreaterThan(0);
    expect(procfs.timeWait.remainingMs.max).toBeLessThanOrEqual(60_000);
    const entry = procfs.pressure.find((p) => p.remote === `127.0.0.1:${PORT}`);
    expect(entry?.inUse).toBe(census.pressure.find((p) => p.remote === `127.0.0.1:${PORT}`)?.inUse);
  });

  it('filters by state and port like ss does', async () => {
    const h = box.client;
    const c = await h.exec(twlabArgv('census', '--json', '--state', 'syn-sent,close-wait'));
    const s = await h.exec(['ss', '-tan', 'state', 'syn-sent', 'state', 'close-wait']);
    const got = JSON.parse(c.stdout) as CensusResult;
    const want = parseSs(s.stdout.replace(/^/, 'State '));
    expect(got.total).toBe(want.rows.length);
    expect(got.byState).toEqual({ 'SYN-SENT': K.synsent, 'CLOSE-WAIT': K.finwait2 });
    expect(got.filter).toEqual({ states: ['SYN-SENT', 'CLOSE-WAIT'] });
    const p = await h.exec(twlabArgv('census', '--json', '--port', String(PORT + 1)));
    const sp = await h.exec(['ss', '-tan', `( sport = :${PORT + 1} or dport = :${PORT + 1} )`]);
    const byPort = JSON.parse(p.stdout) as CensusResult;
    expect(byPort.byState).toEqual(parseSs(sp.stdout).byState);
    // One document, one filtered set: total counts the sockets on the port, not the table.
    expect(byPort.total).toBe(parseSs(sp.stdout).rows.length);
    expect(byPort.total).toBeLessThan(census.total);
    expect(byPort.filter).toEqual({ port: PORT + 1 });
    expect(census.filter).toEqual({});
  });

  it('prints tables without --json', async () => {
    const r = await box.client.exec(twlabArgv('census'));
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`TIME-WAIT\\s+${twMade}\\b`));
    expect(r.stdout).toContain(`127.0.0.1:${PORT}`);
  });
});

describeNs('census pressure against the kernel running out of ports', () => {
  let box: Sandbox;
  beforeAll(async () => {
    box = await createSandbox({
      hosts: 1,
      portRange: { low: 50000, high: 50099 },
      sysctls: { tcp_tw_reuse: 0 },
    });
  }, 60_000);
  afterAll(async () => box?.close());

  it('predicts the connects left (rangeSize - inUse) and connect() then fails with EADDRNOTAVAIL', async () => {
    // A listener that lives through both steps; the churner closes first (TIME-WAIT on its side).
    const server = box.client.spawn([
      'python3',
      '-c',
      'import socket,sys,threading\nl=socket.socket()\nl.bind(("127.0.0.1",8200))\nl.listen(1024)\nprint("ready",flush=True)\n' +
        'def run():\n  while True:\n    s,_=l.accept()\n    s.recv(1)\n    s.close()\nthreading.Thread(target=run,daemon=True).start()\nsys.stdin.read()',
    ]);
    await new Promise<void>((resolve) => server.stdout!.once('data', () => resolve()));
    const churn = (n: number): string =>
      'import socket,errno\nok=0\nerr=""\n' +
      `for _ in range(${n}):\n  c=socket.socket()\n  try:\n    c.connect(("127.0.0.1",8200))\n  except OSError as e:\n    err=errno.errorcode[e.errno]\n    c.close()\n    break\n  ok+=1\n  c.close()\n` +
      'print(ok,err)';
    try {
      const first = await box.client.exec(['python3', '-c', churn(60)]);
      expect(first.stdout.trim()).toBe('60');
      // The client closes first; until the server has closed too, its sockets move from FIN-WAIT-2
      // to TIME-WAIT (a new hash entry replacing the old), which a concurrent dump - ss's or ours -
      // can miss. Let ss (the independent oracle) show every socket to :8200 settled in TIME-WAIT,
      // the same count twice, then take one census. The count is ss's, not assumed: on a loaded
      // machine one of the 60 was seen to leave no TIME-WAIT at all (59, nothing else).
      const toServer = async (): Promise<string[]> => {
        const ss = await box.client.exec(['ss', '-Htan', 'dport', '= :8200']);
        return ss.stdout.trim().split('\n').filter(Boolean);
      };
      let n = -1;
      for (let i = 0; i < 100; i++) {
        const rows = await toServer();
        const settled = rows.every((l) => l.startsWith('TIME-WAIT'));
        if (settled && rows.length === n) break;
        n = settled ? rows.length : -1;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(n).toBeGreaterThanOrEqual(55);
      const r = await box.client.exec(twlabArgv('census', '--json'));
      const c = JSON.parse(r.stdout) as CensusResult;
      const p = c.pressure.find((x) => x.remote === '127.0.0.1:8200')!;
      expect(p.rangeSize).toBe(100);
      expect(p.inUse).toBe(n);
      // n TIME-WAIT sockets made in the last seconds: n/10 per second over the 10 s window.
      expect(p.ratePerSec).toBe(n / 10);
      expect(p.secondsToExhaustion).toBeCloseTo((100 - n) / (n / 10), 2);
      const rest = await box.client.exec(['python3', '-c', churn(200)]);
      const [ok, err] = rest.stdout.trim().split(' ');
      expect(err).toBe('EADDRNOTAVAIL');
      // Exactly the ports left, or one more: this kernel now and then ends a TIME-WAIT early (see
      // the settling above: one of 60 left none; seen here once in four CI runs as 41 of 40, and in
      // top's tests as a 101st connection through a 100-port range with tcp_tw_reuse=0).
      expect(Number(ok)).toBeGreaterThanOrEqual(p.rangeSize - p.inUse);
      expect(Number(ok)).toBeLessThanOrEqual(p.rangeSize - p.inUse + 1);
    } finally {
      server.stdin!.end();
    }
  }, 60_000);
});
