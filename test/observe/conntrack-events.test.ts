/**
 * The router's conntrack events (observe/conntrack-events.ts) against `conntrack -E` run beside
 * them in the same run: a NAT sandbox (40000-40009), twlab's watch in the router through
 * remote(), `conntrack -E` in the router too; a server-first churn of 40 connections through the
 * 10 NAT ports (reused NAT ports: their TIME_WAIT entries are destroyed as new ones take them).
 * Both streams are cut at the same two marker entries (inserted and deleted with `conntrack
 * -I/-D` before and after the churn): the kernel sends every subscriber the same events in the
 * same order, so between the markers they must be equal, event for event, tuples and NAT ports
 * included. Also: decoding of recorded datagrams, bounds, lost events (a tiny receive buffer),
 * and bad options.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  decodeDatagram,
  planConntrackEvents,
  type ConntrackEvent,
  type ConntrackEventsResult,
  type ConntrackWatchEvent,
} from '../../src/observe/conntrack-events.js';
import { createSandbox, remote, type Sandbox } from '../../src/sandbox/index.js';
import { startChurnServer } from '../../src/traffic/churn-sandbox.js';
import { CHURN, CONNTRACK_EVENTS } from '../../src/traffic/remote.js';
import { conntrackEventLine } from '../../src/cli/conntrack-events-format.js';
import { CLI, runCli } from '../helpers/cli.js';
import { insertEntryArgv } from '../helpers/conntrack.js';
import { describeNs, itNs } from '../helpers/sandbox.js';

const PORT = 18432;
const TO = `203.0.113.2:${PORT}`;

/** A marker entry nobody else makes: 192.0.2.1:N -> 192.0.2.2:2. */
const marker = (n: number): string[] => [
  '-p',
  'tcp',
  '-s',
  '192.0.2.1',
  '-d',
  '192.0.2.2',
  '--sport',
  String(n),
  '--dport',
  '2',
];

/** "type orig reply" for one event, as both sides are compared. */
function key(type: string, t: string[][]): string {
  return `${type} ${t[0]!.join(' ')} | ${t[1]!.join(' ')}`;
}

function twlabKey(e: ConntrackEvent): string {
  const tup = (x: ConntrackEvent['orig']): string[] => [x.src, x.dst, String(x.sport), String(x.dport)];
  return key(e.type, [tup(e.orig), tup(e.reply)]);
}

/** conntrack -E lines: "[NEW] tcp 6 120 SYN_SENT src=.. dst=.. sport=.. dport=.. [UNREPLIED] src=.. ...". */
function toolKeys(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const type = /^\s*\[(NEW|UPDATE|DESTROY)\]/.exec(line)?.[1];
    if (!type || !/\btcp\b/.test(line)) continue;
    const t = [...line.matchAll(/src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+)/g)].map((m) => m.slice(1, 5));
    if (t.length >= 2) out.push(key(type.toLowerCase(), t));
  }
  return out;
}

/**
 * The part of a stream after the first marker's last DESTROY (markers may be inserted more than
 * once until both watchers saw one; the last round is in both streams) up to the last marker's
 * first DESTROY, both included.
 */
function window(keys: string[], first: number, last: number): string[] {
  const isDestroy = (n: number) => (k: string) =>
    k.startsWith('destroy ') && k.includes(`192.0.2.1 192.0.2.2 ${n} 2 |`);
  const from = keys.findLastIndex(isDestroy(first));
  const to = keys.findIndex(isDestroy(last));
  expect(from, 'first marker').toBeGreaterThanOrEqual(0);
  expect(to, 'last marker').toBeGreaterThan(from);
  return keys.slice(from, to + 1);
}

async function until(what: string, ok: () => boolean, poke: () => Promise<void>): Promise<void> {
  for (let i = 0; i < 40 && !ok(); i++) {
    await poke();
    await new Promise((r) => setTimeout(r, 250));
  }
  expect(ok(), what).toBe(true);
}

/** Insert and delete a marker entry until both watchers saw its DESTROY. */
async function markBoth(sb: Sandbox, n: number, seen: () => [string, ConntrackEvent[]]): Promise<void> {
  const sawIt = (): boolean => {
    const [tool, mine] = seen();
    return (
      tool.includes(`[DESTROY]`) &&
      toolKeys(tool).some((k) => k.startsWith('destroy ') && k.includes(`192.0.2.2 ${n} 2 |`)) &&
      mine.some((e) => e.type === 'destroy' && e.orig.sport === n && e.orig.src === '192.0.2.1')
    );
  };
  await until(`marker ${n} seen by both`, sawIt, async () => {
    const made = await sb.router!.exec(insertEntryArgv(marker(n)));
    expect(made.code, made.stderr).toBe(0);
    await sb.router!.exec(['conntrack', '-D', ...marker(n)]);
  });
}

describe('conntrack events: decoding and options', () => {
  it('decodes NEW, UPDATE and DESTROY messages as the kernel sends them, with the NAT port', () => {
    // nlmsghdr + nfgenmsg + CTA_TUPLE_ORIG/REPLY (nested) + CTA_PROTOINFO, built by hand from
    // the uapi layouts (nfnetlink_conntrack.h).
    const attr = (type: number, payload: Buffer, nested = false): Buffer => {
      const len = 4 + payload.length;
      const b = Buffer.alloc((len + 3) & ~3);
      b.writeUInt16LE(len, 0);
      b.writeUInt16LE(type | (nested ? 0x8000 : 0), 2);
      payload.copy(b, 4);
      return b;
    };
    const ip = (a: string): Buffer => Buffer.from(a.split('.').map(Number));
    const port = (p: number): Buffer => Buffer.from([p >> 8, p & 0xff]);
    const tuple = (type: number, src: string, dst: string, sp: number, dp: number): Buffer =>
      attr(
        type,
        Buffer.concat([
          attr(1, Buffer.concat([attr(1, ip(src)), attr(2, ip(dst))]), true),
          attr(2, Buffer.concat([attr(1, Buffer.from([6])), attr(2, port(sp)), attr(3, port(dp))]), true),
        ]),
        true,
      );
    const msg = (msgType: number, flags: number, state: number): Buffer => {
      const timeout = Buffer.alloc(4);
      timeout.writeUInt32BE(120, 0);
      const body = Buffer.concat([
        Buffer.from([2, 0, 0, 0]), // nfgenmsg: AF_INET
        tuple(1, '198.51.100.1', '203.0.113.2', 41000, 8080),
        tuple(2, '203.0.113.2', '203.0.113.1', 8080, 40003),
        attr(7, timeout),
        attr(4, attr(1, attr(1, Buffer.from([state])), true), true),
      ]);
      const h = Buffer.alloc(16);
      h.writeUInt32LE(16 + body.length, 0);
      h.writeUInt16LE((1 << 8) | msgType, 4);
      h.writeUInt16LE(flags, 6);
      return Buffer.concat([h, body]);
    };
    const dgram = Buffer.concat([msg(0, 0x600, 1), msg(0, 0, 3), msg(2, 0, 7)]);
    const all = new Set(['new', 'update', 'destroy'] as const);
    const evs = decodeDatagram(dgram, dgram.length, 5, 0, all);
    expect(evs.map((e) => [e.type, e.state, e.nat, e.timeoutS])).toEqual([
      ['new', 'SYN_SENT', { address: '203.0.113.1', port: 40003 }, 120],
      ['update', 'ESTABLISHED', { address: '203.0.113.1', port: 40003 }, 120],
      ['destroy', 'TIME_WAIT', { address: '203.0.113.1', port: 40003 }, undefined],
    ]);
    expect(evs[0]).toMatchObject({
      protocol: 'tcp',
      orig: { src: '198.51.100.1', dst: '203.0.113.2', sport: 41000, dport: 8080 },
    });
    expect(decodeDatagram(dgram, dgram.length, 5, 0, new Set(['destroy'] as const))).toHaveLength(1);
  });

  it('refuses bad options with a UsageError naming them', () => {
    expect(() => planConntrackEvents({ types: [] })).toThrow(/no event type/);
    expect(() => planConntrackEvents({ types: ['birth' as never] })).toThrow(/unknown type 'birth'/);
    expect(() => planConntrackEvents({ durationMs: 0 })).toThrow(/duration/);
    expect(() => planConntrackEvents({ maxEvents: 2_000_000 })).toThrow(/max events/);
    expect(planConntrackEvents({})).toMatchObject({
      types: ['new', 'destroy'],
      durationMs: 10_000,
      maxEvents: 100_000,
    });
  });
});

describeNs("conntrack events: the router's NEW/DESTROY equal conntrack -E beside them", () => {
  itNs(
    'server-first churn through 10 NAT ports: event for event, NAT ports included; bounds and losses reported',
    async () => {
      const sb = await createSandbox({ hosts: 3, nat: { ports: { low: 40000, high: 40009 } } });
      let tool: ChildProcess | undefined;
      try {
        let toolOut = '';
        let toolErr = '';
        tool = sb.router!.spawn(['conntrack', '-E', '-e', 'NEW,DESTROY', '-p', 'tcp', '-b', '16777216']);
        tool.stdout!.setEncoding('utf8').on('data', (d: string) => (toolOut += d));
        tool.stderr!.setEncoding('utf8').on('data', (d: string) => (toolErr += d));
        const mine: ConntrackEvent[] = [];
        let subscribed = false;
        const watch = remote(sb.router!, CONNTRACK_EVENTS, (e: ConntrackWatchEvent) => {
          if (e.kind === 'subscribed') subscribed = true;
          else mine.push(e);
        }).watchConntrackEvents({ id: 'test', durationMs: 90_000, types: ['new', 'destroy'] });
        await until(
          'twlab subscribed',
          () => subscribed,
          async () => undefined,
        );
        await markBoth(sb, 1, () => [toolOut, mine]);

        const server = await startChurnServer(sb.server, { to: TO, close: 'server-first' });
        let churn;
        try {
          churn = await remote(sb.client, CHURN).runChurn({
            to: TO,
            count: 40,
            close: 'server-first',
            timeoutMs: 5000,
            stopOnError: false,
          });
        } finally {
          await server.stop();
        }
        await markBoth(sb, 3, () => [toolOut, mine]);
        expect(await remote(sb.router!, CONNTRACK_EVENTS).stopConntrackEvents('test')).toBe(true);
        const result: ConntrackEventsResult = await watch;
        tool.kill('SIGINT');
        await new Promise((r) => tool!.once('exit', r));

        expect(result.stoppedBy).toBe('stop');
        expect(result.lost.overruns).toBe(0);
        expect(toolErr).not.toMatch(/ENOBUFS|No buffer space/i);
        // Streamed and returned events are the same.
        expect(result.events.map(twlabKey)).toEqual(mine.map(twlabKey));
        const theirs = window(toolKeys(toolOut), 1, 3);
        const ours = window(mine.map(twlabKey), 1, 3);
        expect(ours).toEqual(theirs);
        // The churn's connections are all in it: entries for as many client ports as attempts (a
        // SYN the client resent after resetting a reused NAT port's unacceptable ACK makes a
        // second entry for its port), each with a NAT port of the range.
        const clientPorts = new Set(
          mine.filter((e) => e.type === 'new' && e.orig.dport === PORT).map((e) => e.orig.sport),
        );
        expect(clientPorts.size).toBe(churn.attempted);
        const natPorts = mine
          .filter((e) => e.type === 'new' && e.orig.dport === PORT)
          .map((e) => e.nat?.port ?? 0);
        expect(natPorts.every((p) => p >= 40000 && p <= 40009)).toBe(true);
        expect(new Set(natPorts).size).toBeLessThanOrEqual(10);
        expect(result.eventsSysctl).not.toBe('0');
        process.stderr.write(
          `conntrack events: ${ours.length} in the window equal conntrack -E's; counts ${JSON.stringify(result.counts)}, ` +
            `${churn.succeeded}/${churn.attempted} connections, NAT ports ${new Set(natPorts).size}, rcvbuf ${result.receiveBufferBytes}\n`,
        );

        // Bounds: a count bound stops it; a tiny receive buffer under a burst reports lost events.
        const counted = remote(sb.router!, CONNTRACK_EVENTS).watchConntrackEvents({
          maxEvents: 2,
          durationMs: 30_000,
        });
        await new Promise((r) => setTimeout(r, 300));
        for (const n of [5, 6, 7]) {
          await sb.router!.exec(insertEntryArgv(marker(n)));
        }
        const c = await counted;
        expect(c.stoppedBy).toBe('count');
        expect(c.events.length).toBe(2);

        const tiny = remote(sb.router!, CONNTRACK_EVENTS).watchConntrackEvents({
          id: 'tiny',
          receiveBufferBytes: 1,
          pollMs: 1000,
          durationMs: 30_000,
          types: ['new', 'update', 'destroy'],
          stream: false,
        });
        await new Promise((r) => setTimeout(r, 300));
        // conntrack -F destroys every entry at once: hundreds of messages into a ~2 KB buffer.
        const made = await sb.router!.exec(
          [
            'sh',
            '-c',
            'for i in $(seq 100 400); do conntrack -I -p tcp -s 192.0.2.1 -d 192.0.2.2 --sport $i --dport 2 --state ESTABLISHED -t 60 -u SEEN_REPLY 2>/dev/null; done; conntrack -F 2>/dev/null; true',
          ],
          { timeoutMs: 60_000 },
        );
        expect(made.code).toBe(0);
        await remote(sb.router!, CONNTRACK_EVENTS).stopConntrackEvents('tiny');
        const lossy = await tiny;
        expect(lossy.lost.overruns, JSON.stringify(lossy.counts)).toBeGreaterThan(0);
      } finally {
        tool?.kill('SIGKILL');
        await sb.close();
      }
    },
    120_000,
  );
});

describe('twlab trace --conntrack: usage', () => {
  it.each([
    [['--conntrack-events', 'birth'], /--conntrack-events: unknown type 'birth'/],
    [['--conntrack-events', ','], /--conntrack-events: ',' names no event type/],
    [
      ['--conntrack-netns', 'foo'],
      /--conntrack-netns: 'foo' is neither a PID nor an absolute namespace path/,
    ],
    [['--conntrack-netns', '999999999'], /--conntrack-netns: '999999999': no such namespace/],
  ])('%j: one line, exit 2, nothing started', async (args, pattern) => {
    const r = await runCli(['trace', ...args]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(pattern);
  });

  it('--help shows the conntrack examples', async () => {
    const r = await runCli(['trace', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('--conntrack-netns $TWLAB_ROUTER_PID');
    expect(r.stdout).toContain('twlab trace --port 8080 --conntrack');
  });

  it('one line per event, with the NAT port', () => {
    const e: ConntrackEvent = {
      kind: 'conntrack',
      type: 'new',
      timeMs: 1500,
      time: '',
      family: 4,
      protocol: 'tcp',
      state: 'SYN_SENT',
      orig: { src: '198.51.100.1', dst: '203.0.113.2', sport: 41000, dport: 8080 },
      reply: { src: '203.0.113.2', dst: '203.0.113.1', sport: 8080, dport: 40003 },
      nat: { address: '203.0.113.1', port: 40003 },
    };
    expect(conntrackEventLine(e, 500)).toBe(
      '1.000      [NEW]      tcp SYN_SENT     198.51.100.1:41000 -> 203.0.113.2:8080  NAT 203.0.113.1:40003\n',
    );
  });
});

describeNs(
  'twlab trace --conntrack-netns: the NAT router seen from outside and from inside the sandbox',
  () => {
    itNs(
      "the router's NEW events name every client port of the run and a NAT port of the range",
      async () => {
        const port = 18434;
        const sb = await createSandbox({ hosts: 3, nat: { ports: { low: 40000, high: 40009 } } });
        try {
          const child = spawn(
            process.execPath,
            [
              CLI,
              'trace',
              '--port',
              String(port),
              '--conntrack-netns',
              String(sb.router!.pid),
              '--duration',
              '60',
              '--json',
            ],
            { stdio: ['ignore', 'pipe', 'pipe'] },
          );
          let stdout = '';
          let stderr = '';
          child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
          const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
          child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
          await until(
            'trace started',
            () => stderr.includes('tracefs instance'),
            async () => undefined,
          );
          const to = `203.0.113.2:${port}`;
          const server = await startChurnServer(sb.server, { to, close: 'client-first' });
          let churn;
          try {
            churn = await remote(sb.client, CHURN).runChurn({
              to,
              count: 20,
              close: 'client-first',
              timeoutMs: 5000,
            });
          } finally {
            await server.stop();
          }
          child.kill('SIGINT');
          expect(await exited, stderr).toBe(130);
          const doc = JSON.parse(stdout) as { conntrack: ConntrackEventsResult };
          const ct = doc.conntrack;
          expect(ct.netns).toBe(statSync(`/proc/${sb.router!.pid}/ns/net`).ino);
          expect(ct.lost.overruns).toBe(0);
          const news = ct.events.filter((e) => e.type === 'new');
          expect(new Set(news.map((e) => e.orig.sport)).size).toBe(churn.attempted);
          expect(
            news.every((e) => e.orig.dport === port && e.nat && e.nat.port >= 40000 && e.nat.port <= 40009),
          ).toBe(true);
          expect(ct.counts.new).toBe(news.length);

          // Inside the sandbox (the client host), $TWLAB_ROUTER_PID names the router.
          const inside = await runCli([
            'sandbox',
            '--nat',
            '40000-40009',
            '--',
            'sh',
            '-c',
            `readlink /proc/$TWLAB_ROUTER_PID/ns/net >&2; exec "${process.execPath}" "${CLI}" trace --port ${port} --conntrack-netns $TWLAB_ROUTER_PID --duration 0.5 --json`,
          ]);
          expect(inside.code, inside.stderr).toBe(0);
          const routerNs = /net:\[(\d+)\]/.exec(inside.stderr)?.[1];
          expect(routerNs, inside.stderr).toBeDefined();
          expect((JSON.parse(inside.stdout) as { conntrack: ConntrackEventsResult }).conntrack.netns).toBe(
            Number(routerNs),
          );
        } finally {
          await sb.close();
        }
      },
      90_000,
    );
  },
);
