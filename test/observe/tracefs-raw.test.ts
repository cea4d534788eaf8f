/**
 * The binary ring-buffer reader (observe/tracefs-raw.ts): pages the kernel wrote, parsed and
 * checked against the kernel's own text rendering of the same events (the instance's `trace`
 * file), a page that says events were lost checked against the kernel's overrun count, and pages
 * built by hand for the record kinds a short capture may not contain (padding, time extend,
 * absolute time stamp, long records, an empty page, missed-events flags).
 */
import { spawnSync } from 'node:child_process';
import {
  closeSync,
  constants,
  existsSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  writeFileSync,
} from 'node:fs';
import { endianness } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findTracefs, readEventFormat, TraceInstance } from '../../src/observe/tracefs.js';
import {
  parseEventFormat,
  parseHeaderEvent,
  parseHeaderPage,
  type EventFormat,
} from '../../src/observe/tracefs-format.js';
import {
  KIND_STATE,
  RawEventParser,
  ip6c,
  parsePage,
  type PageInfo,
  type RawEvent,
  type RawLayout,
} from '../../src/observe/tracefs-raw.js';

const FORMAT = '/sys/kernel/tracing/events/sock/inet_sock_set_state/format';
const haveTracefs = existsSync(FORMAT) && process.getuid?.() === 0;

// Linux 6.18's descriptions (x86_64), as tracefs printed them: the hand-built pages use these.
const HEADER_PAGE = `\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;
\tfield: local_t commit;\toffset:8;\tsize:8;\tsigned:1;
\tfield: int overwrite;\toffset:8;\tsize:1;\tsigned:1;
\tfield: char data;\toffset:16;\tsize:4080;\tsigned:0;
`;
const HEADER_EVENT = `# compressed entry header
\ttype_len    :    5 bits
\ttime_delta  :   27 bits
\tarray       :   32 bits

\tpadding     : type == 29
\ttime_extend : type == 30
\ttime_stamp : type == 31
\tdata max type_len  == 28
`;
const STATE_FORMAT = `name: inet_sock_set_state
ID: 2287
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:const void * skaddr;\toffset:8;\tsize:8;\tsigned:0;
\tfield:int oldstate;\toffset:16;\tsize:4;\tsigned:1;
\tfield:int newstate;\toffset:20;\tsize:4;\tsigned:1;
\tfield:__u16 sport;\toffset:24;\tsize:2;\tsigned:0;
\tfield:__u16 dport;\toffset:26;\tsize:2;\tsigned:0;
\tfield:__u16 family;\toffset:28;\tsize:2;\tsigned:0;
\tfield:__u16 protocol;\toffset:30;\tsize:2;\tsigned:0;
\tfield:__u8 saddr[4];\toffset:32;\tsize:4;\tsigned:0;
\tfield:__u8 daddr[4];\toffset:36;\tsize:4;\tsigned:0;
\tfield:__u8 saddr_v6[16];\toffset:40;\tsize:16;\tsigned:0;
\tfield:__u8 daddr_v6[16];\toffset:56;\tsize:16;\tsigned:0;

print fmt: "family=%s sport=%hu", __print_symbolic(REC->family, { 2, "AF_INET" }, { 10, "AF_INET6" }), REC->sport
`;

describe('tracefs descriptions', () => {
  it('reads the page and record headers', () => {
    expect(parseHeaderPage(HEADER_PAGE)).toEqual({
      timestamp: { offset: 0, size: 8 },
      commit: { offset: 8, size: 8 },
      data: { offset: 16, size: 4080 },
      pageSize: 4096,
    });
    expect(parseHeaderEvent(HEADER_EVENT)).toEqual({
      typeLenBits: 5,
      timeDeltaBits: 27,
      padding: 29,
      timeExtend: 30,
      timeStamp: 31,
      dataMax: 28,
    });
    expect(() => parseHeaderPage('hello')).toThrow(/header_page/);
    expect(() => parseHeaderEvent('hello')).toThrow(/header_event/);
  });

  it.runIf(haveTracefs)("matches this kernel's own files", async () => {
    const root = await findTracefs();
    const page = parseHeaderPage(readFileSync(join(root, 'events', 'header_page'), 'utf8'));
    expect(page.pageSize).toBeGreaterThan(page.data.offset);
    const f = parseEventFormat(readFileSync(FORMAT, 'utf8'));
    expect(f.common.map((x) => x.name)).toEqual(expect.arrayContaining(['common_type', 'common_pid']));
  });

  it('formats IPv6 addresses as %pI6c does', () => {
    const v6 = (hex: string): string => {
      const b = Buffer.from(hex.replaceAll(':', ''), 'hex');
      return ip6c(new DataView(b.buffer, b.byteOffset, 16), 0);
    };
    expect(v6('0000:0000:0000:0000:0000:0000:0000:0001')).toBe('::1');
    expect(v6('0000:0000:0000:0000:0000:0000:0000:0000')).toBe('::');
    expect(v6('0000:0000:0000:0000:0000:ffff:7f00:0001')).toBe('::ffff:127.0.0.1');
    expect(v6('2001:0db8:0000:0000:0001:0000:0000:0001')).toBe('2001:db8::1:0:0:1');
    expect(v6('2001:0db8:0000:0001:0001:0001:0001:0001')).toBe('2001:db8:0:1:1:1:1:1');
    expect(v6('fe80:0000:0000:0000:0000:5efe:0a00:0001')).toBe('fe80::5efe:10.0.0.1');
  });
});

// ---------------------------------------------------------------------------------------------
// Pages built by hand

const LE = endianness() === 'LE';
const layout: RawLayout = {
  page: parseHeaderPage(HEADER_PAGE),
  header: parseHeaderEvent(HEADER_EVENT),
  littleEndian: LE,
};
const stateFormat = parseEventFormat(STATE_FORMAT);

/** A record: header word (type_len low 5 bits, time_delta above), then words/bytes. */
function rec(type: number, delta: number, ...rest: (number | Buffer)[]): Buffer {
  const parts = [u32(type + delta * 32), ...rest.map((r) => (typeof r === 'number' ? u32(r) : r))];
  return Buffer.concat(parts);
}
function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  if (LE) b.writeUInt32LE(n >>> 0);
  else b.writeUInt32BE(n >>> 0);
  return b;
}
/** An inet_sock_set_state record's data (72 bytes, plus `pad` more). */
function stateData(pid: number, sport: number, oldState: number, newState: number, pad = 0): Buffer {
  const b = Buffer.alloc(72 + pad);
  const w16 = (v: number, o: number): number => (LE ? b.writeUInt16LE(v, o) : b.writeUInt16BE(v, o));
  const w32 = (v: number, o: number): number => (LE ? b.writeInt32LE(v, o) : b.writeInt32BE(v, o));
  w16(stateFormat.id, 0);
  w32(pid, 4);
  w32(0x11223344, 8);
  w32(-0x7777, 12);
  w32(oldState, 16);
  w32(newState, 20);
  w16(sport, 24);
  w16(80, 26);
  w16(2, 28);
  w16(6, 30);
  b.set([10, 0, 0, 1], 32);
  b.set([10, 0, 0, 2], 36);
  return b;
}
function page(timeNs: number, records: Buffer[], flags = 0, missedCount?: number): DataView {
  const p = Buffer.alloc(4096);
  const data = Buffer.concat(records);
  data.copy(p, 16);
  const w64 = (v: number, o: number): void => {
    const [lo, hi] = [v % 2 ** 32, Math.floor(v / 2 ** 32)];
    if (LE) {
      p.writeUInt32LE(lo, o);
      p.writeUInt32LE(hi, o + 4);
    } else {
      p.writeUInt32BE(hi, o);
      p.writeUInt32BE(lo, o + 4);
    }
  };
  w64(timeNs, 0);
  w64(data.length + flags, 8);
  if (missedCount !== undefined) w64(missedCount, 16 + data.length);
  return new DataView(p.buffer, p.byteOffset, p.length);
}
function parseAll(view: DataView): { info: PageInfo; events: RawEvent[]; parser: RawEventParser } {
  const parser = new RawEventParser(layout, { state: stateFormat });
  const events: RawEvent[] = [];
  const info = parser.parse(view, 3, events);
  return { info, events, parser };
}

describe('pages built by hand', () => {
  it('adds each time delta; a time extend adds array[0] << 27 | delta; an absolute stamp replaces the time', () => {
    const base = 1_000_000_000_000;
    const { info, events } = parseAll(
      page(base, [
        rec(18, 5, stateData(7, 1000, 7, 2)), // +5 ns
        rec(30, 3, 2), // time extend: 2 << 27 | 3
        rec(18, 0, stateData(7, 1001, 2, 1)),
        rec(31, 10 % 2 ** 27, Math.floor(5_000_000_000_000 / 2 ** 27)), // absolute
        rec(18, 7, stateData(8, 1002, 1, 4)),
      ]),
    );
    expect(info).toMatchObject({ records: 3, timeRecords: 2, missed: 0 });
    expect(events.map((e) => e.timeNs)).toEqual([
      base + 5,
      base + 5 + 2 * 2 ** 27 + 3,
      Math.floor(5_000_000_000_000 / 2 ** 27) * 2 ** 27 + 10 + 7,
    ]);
    expect(events[0]).toMatchObject({
      kind: KIND_STATE,
      cpu: 3,
      tid: 7,
      family: 2,
      sport: 1000,
      dport: 80,
      oldState: 7,
      newState: 2,
      local: '10.0.0.1',
      remote: '10.0.0.2',
      skLo: 0x11223344,
      skHi: (-0x7777 >>> 0) as number,
    });
  });

  it('skips a discarded event (padding with a length) without adding its delta; stops at null padding', () => {
    const { info, events } = parseAll(
      page(100, [
        rec(18, 1, stateData(1, 1, 7, 2)),
        rec(29, 50, 16, Buffer.alloc(12)), // discarded: array[0] = its bytes after the header word, itself included
        rec(18, 2, stateData(2, 2, 2, 1)),
        rec(29, 0), // the rest of the page is empty
        rec(18, 4, stateData(3, 3, 1, 4)), // never reached
      ]),
    );
    expect(events.map((e) => [e.tid, e.timeNs])).toEqual([
      [1, 101],
      [2, 103],
    ]);
    expect(info.records).toBe(2);
  });

  it('reads a long record (type_len 0: length in array[0], data after it) and skips unknown event ids', () => {
    const long = stateData(9, 9, 1, 8, 48); // 120 bytes: more than type_len can say
    const other = stateData(10, 10, 1, 8);
    if (LE)
      other.writeUInt16LE(1, 0); // another event id
    else other.writeUInt16BE(1, 0);
    const { events } = parseAll(page(0, [rec(0, 1, long.length + 4, long), rec(18, 1, other)]));
    expect(events.map((e) => [e.tid, e.newState, e.timeNs])).toEqual([[9, 8, 1]]);
  });

  it('an empty page has no events; missed-events flags give the stored count, or -1 without room', () => {
    expect(parseAll(page(5, [])).info).toMatchObject({ records: 0, missed: 0, used: 0 });
    const counted = parseAll(page(5, [rec(18, 1, stateData(1, 1, 7, 2))], 2 ** 31 + 2 ** 30, 1234));
    expect(counted.info.missed).toBe(1234);
    expect(counted.events).toHaveLength(1);
    expect(counted.parser.missed).toBe(1234);
    const flagged = parseAll(page(5, [rec(18, 1, stateData(1, 1, 7, 2))], 2 ** 31));
    expect(flagged.info.missed).toBe(-1);
    expect(flagged.parser.missedUncounted).toBe(1);
  });
});

// ---------------------------------------------------------------------------------------------
// Pages the kernel wrote

/** Every page each CPU's trace_pipe_raw has now (consumed; nonblocking: an empty buffer ends it). */
function readAllPages(inst: TraceInstance, pageSize: number): { cpu: number; view: DataView }[] {
  const out: { cpu: number; view: DataView }[] = [];
  for (const dir of readdirSync(join(inst.path, 'per_cpu'))) {
    const cpu = Number(/^cpu(\d+)$/.exec(dir)?.[1] ?? NaN);
    if (!Number.isFinite(cpu)) continue;
    const fd = openSync(
      join(inst.path, 'per_cpu', dir, 'trace_pipe_raw'),
      constants.O_RDONLY | constants.O_NONBLOCK,
    );
    try {
      for (let i = 0; i < 10_000; i++) {
        const b = Buffer.alloc(pageSize);
        let n: number;
        try {
          n = readSync(fd, b, 0, pageSize, null);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EAGAIN') break;
          throw err;
        }
        if (n === 0) break;
        out.push({ cpu, view: new DataView(b.buffer, b.byteOffset, n) });
      }
    } finally {
      closeSync(fd);
    }
  }
  return out;
}

/** The instance's layout as it describes itself. */
function layoutOf(inst: TraceInstance): RawLayout {
  return {
    page: parseHeaderPage(readFileSync(join(inst.path, 'events', 'header_page'), 'utf8')),
    header: parseHeaderEvent(readFileSync(join(inst.path, 'events', 'header_event'), 'utf8')),
    littleEndian: LE,
  };
}

const PY_CONNECTIONS = `
import socket, sys, time
P = int(sys.argv[1]); N = int(sys.argv[2]); GAP = float(sys.argv[3])
l = socket.socket(socket.AF_INET6); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
try:
    l.bind(('::', P))
except OSError:
    sys.exit(3)  # taken on this shared host: the test takes another port
l.listen(64)
for i in range(N):
    fam, host = (socket.AF_INET6, '::1') if i % 2 else (socket.AF_INET, '127.0.0.1')
    c = socket.socket(fam); c.connect((host, P)); a, _ = l.accept()
    c.close(); a.close()
    if GAP: time.sleep(GAP)
l.close()
`;

/**
 * `n` connections (every other one IPv6) to a listener on a random port, the instance's event
 * filtered to it first; another port when that one is taken on this shared host. Returns the port.
 */
async function connections(inst: TraceInstance, n: number, gapS: number): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 10_000);
    await inst.enableEvent('sock', 'inet_sock_set_state', `sport == ${port} || dport == ${port}`);
    const r = spawnSync('python3', ['-c', PY_CONNECTIONS, String(port), String(n), String(gapS)], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    if (r.status === 3 && attempt < 5) continue;
    expect(r.status, r.stderr).toBe(0);
    return port;
  }
}

/** The kernel's text line body for a state change, rebuilt from the raw record. */
function asText(view: DataView, off: number, f: EventFormat, le: boolean): string {
  const at = (name: string): number => f.fields.find((x) => x.name === name)!.offset + off;
  const sym = (field: string, v: number): string => f.symbols.get(field)?.get(v) ?? String(v);
  const ip4 = (o: number): string => [0, 1, 2, 3].map((i) => view.getUint8(o + i)).join('.');
  return [
    `family=${sym('family', view.getUint16(at('family'), le))}`,
    `protocol=${sym('protocol', view.getUint16(at('protocol'), le))}`,
    `sport=${view.getUint16(at('sport'), le)}`,
    `dport=${view.getUint16(at('dport'), le)}`,
    `saddr=${ip4(at('saddr'))}`,
    `daddr=${ip4(at('daddr'))}`,
    `saddrv6=${ip6c(view, at('saddr_v6'))}`,
    `daddrv6=${ip6c(view, at('daddr_v6'))}`,
    `oldstate=${sym('oldstate', view.getInt32(at('oldstate'), le))}`,
    `newstate=${sym('newstate', view.getInt32(at('newstate'), le))}`,
  ].join(' ');
}

/** "%5lu.%06lu" of ns, as the text output prints a time stamp (kernel ns2usecs: rounded to µs). */
function usecs(ns: number): string {
  const us = Math.floor((ns + 500) / 1000);
  return `${Math.floor(us / 1e6)}.${String(us % 1e6).padStart(6, '0')}`;
}

describe.runIf(haveTracefs)('pages the kernel wrote', () => {
  it('are, event by event, what its text trace shows: time, CPU, pid, every field (IPv4, IPv6, v4-mapped)', async () => {
    const root = await findTracefs();
    const format = (await readEventFormat(root, 'sock', 'inet_sock_set_state'))!;
    const inst = await TraceInstance.create(root);
    try {
      await inst.setClock('mono');
      // 200 ms apart: a CPU that was idle that long writes a time extend (deltas have 27 bits, ~134 ms).
      await connections(inst, 6, 0.2);
      writeFileSync(join(inst.path, 'tracing_on'), '0');
      // The text view first (reading `trace` consumes nothing), then the same events raw.
      const text = readFileSync(join(inst.path, 'trace'), 'utf8')
        .split('\n')
        .filter((l) => l.includes('inet_sock_set_state:'))
        .map((l) => {
          const m = /-(\d+)\s+\[(\d+)\]\s+\S+\s+(\d+\.\d+): inet_sock_set_state: (.*)$/.exec(l);
          expect(m, l).not.toBeNull();
          return `${m![3]} cpu${Number(m![2])} pid${m![1]} ${m![4]}`;
        });
      const lay = layoutOf(inst);
      const raw: { ns: number; cpu: number; line: string }[] = [];
      const parser = new RawEventParser(lay, { state: format });
      let timeRecords = 0;
      for (const { cpu, view } of readAllPages(inst, lay.page.pageSize)) {
        const info = parsePage(view, lay, (ns, off) => {
          const pid = view.getInt32(off + format.common.find((c) => c.name === 'common_pid')!.offset, LE);
          raw.push({ ns, cpu, line: `${usecs(ns)} cpu${cpu} pid${pid} ${asText(view, off, format, LE)}` });
        });
        timeRecords += info.timeRecords;
        // The decoder the tracer uses agrees with the field-by-field rendering.
        const events: RawEvent[] = [];
        parser.parse(view, cpu, events);
        expect(events).toHaveLength(info.records);
      }
      raw.sort((a, b) => a.ns - b.ns);
      // 6 connections: 1 LISTEN + 10 per connection (5 per side) + the listener's close.
      expect(text.length).toBeGreaterThanOrEqual(6 * 10);
      expect(raw.map((r) => r.line).sort()).toEqual([...text].sort());
      expect(text.some((l) => / family=AF_INET6 .*saddrv6=::1 /.test(l))).toBe(true);
      expect(text.some((l) => / family=AF_INET6 .*saddrv6=::ffff:127\.0\.0\.1 /.test(l))).toBe(true);
      // A CPU idle > 2^27 ns between two of its events wrote a time extend (on a host with many
      // CPUs the connections may each have run on another one: then there was none to read).
      const lastOn = new Map<number, number>();
      let longGap = false;
      for (const r of raw) {
        const prev = lastOn.get(r.cpu);
        if (prev !== undefined && r.ns - prev > 2 ** 27) longGap = true;
        lastOn.set(r.cpu, r.ns);
      }
      expect(longGap || timeRecords === 0).toBe(true); // an extend only after an idle stretch
      if (longGap) expect(timeRecords).toBeGreaterThan(0);
    } finally {
      await inst.remove();
    }
  });

  it('say how many events were lost: the missed counts of the pages add up to the kernel overrun', async () => {
    const root = await findTracefs();
    const format = (await readEventFormat(root, 'sock', 'inet_sock_set_state'))!;
    const inst = await TraceInstance.create(root);
    try {
      await inst.setClock('mono');
      await inst.setBufferKb(4); // the smallest ring: a few pages per CPU
      await connections(inst, 300, 0); // ~3,000 events: far more than the ring holds
      writeFileSync(join(inst.path, 'tracing_on'), '0');
      const lay = layoutOf(inst);
      const parser = new RawEventParser(lay, { state: format });
      const events: RawEvent[] = [];
      for (const { cpu, view } of readAllPages(inst, lay.page.pageSize)) parser.parse(view, cpu, events);
      let overrun = 0;
      for (const dir of readdirSync(join(inst.path, 'per_cpu'))) {
        const stats = readFileSync(join(inst.path, 'per_cpu', dir, 'stats'), 'utf8');
        overrun += Number(/^overrun:\s*(\d+)/m.exec(stats)?.[1] ?? NaN);
      }
      expect(overrun).toBeGreaterThan(0);
      expect(parser.missed).toBeGreaterThan(0);
      // A page full to the end has no room for the count (flag only, counted as 1 here).
      if (parser.missedUncounted === 0) expect(parser.missed).toBe(overrun);
      else expect(parser.missed).toBeLessThanOrEqual(overrun);
      expect(events.length + overrun).toBeGreaterThanOrEqual(300 * 10);
    } finally {
      await inst.remove();
    }
  });
});
