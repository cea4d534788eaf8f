/**
 * The binary ring buffer of a tracefs instance, as `per_cpu/cpuN/trace_pipe_raw` hands it out: one
 * page (sub-buffer) per read(), a header (time stamp, commit) then compressed records. Pure: pages
 * in, events out; every offset and type number comes from the instance's `events/header_page`,
 * `events/header_event` and each event's `format` (tracefs-format.ts).
 *
 * Record format (kernel/trace/ring_buffer.c, include/linux/ring_buffer.h): a 32-bit header,
 * type_len (5 bits) and time_delta (27 bits), then `array[]`.
 * - type_len 1..28: data of type_len * 4 bytes at array[0]; 0: length in array[0] (counting
 *   itself), data at array[1]. The event's time is the previous one's plus time_delta.
 * - padding (29): time_delta 0 = the rest of the page is empty; otherwise a discarded event of
 *   array[0] bytes after the header. Its delta is not added (the kernel's reader skips it too).
 * - time extend (30): delta = array[0] << 27 | time_delta, added; the data record follows.
 * - time stamp (31): absolute time, the 5 top bits taken from the current time.
 * The page's commit word holds the bytes used, and two flags (RB_MISSED_EVENTS: events were lost
 * before this page; RB_MISSED_STORED: their count, an unsigned long, is stored right after the data).
 */
import type { EventFormat, EventHeader, PageHeader } from './tracefs-format.js';

/** kernel/trace/ring_buffer.c: bits of the page's commit word above the byte count. */
export const RB_MISSED_EVENTS = 2 ** 31;
export const RB_MISSED_STORED = 2 ** 30;
const TS_SHIFT = 2 ** 27;
/** The top 5 bits of a 64-bit time (TS_MSB) an absolute time stamp record leaves out. */
const TS_MSB_UNIT = 2 ** 59;

export interface RawLayout {
  page: PageHeader;
  header: EventHeader;
  /** Host byte order: the ring buffer is written in it. */
  littleEndian: boolean;
}

export interface PageInfo {
  /** The page's time stamp, ns of the instance's trace_clock. */
  timeNs: number;
  /** Bytes of records. */
  used: number;
  /**
   * Events the kernel lost before this page (overwritten while unread): the stored count, -1 when
   * the page is flagged without room for the count, 0 when none.
   */
  missed: number;
  /** Data records on the page. */
  records: number;
  /** Time extend and absolute time stamp records on the page. */
  timeRecords: number;
}

function u64(view: DataView, off: number, le: boolean): number {
  const lo = view.getUint32(off + (le ? 0 : 4), le);
  const hi = view.getUint32(off + (le ? 4 : 0), le);
  return hi * 2 ** 32 + lo;
}

/** A record header's type_len and time_delta (C bit-fields: type_len in the low bits on little-endian hosts). */
function recordHeader(word: number, h: EventHeader, le: boolean): [number, number] {
  const typeMask = 2 ** h.typeLenBits - 1;
  const deltaMask = 2 ** h.timeDeltaBits - 1;
  return le
    ? [word & typeMask, Math.floor(word / 2 ** h.typeLenBits) & deltaMask]
    : [Math.floor(word / 2 ** h.timeDeltaBits) & typeMask, word & deltaMask];
}

/**
 * Walk one page: `onRecord(timeNs, offset, length)` for every data record (offset into `view`,
 * length of its data, which may include alignment bytes after the event's fields).
 */
export function parsePage(
  view: DataView,
  layout: RawLayout,
  onRecord: (timeNs: number, offset: number, length: number) => void,
): PageInfo {
  const { page, header: h, littleEndian: le } = layout;
  let ts = u64(view, page.timestamp.offset, le);
  const commitLow = view.getUint32(page.commit.offset + (le || page.commit.size === 4 ? 0 : 4), le);
  const used = commitLow % RB_MISSED_STORED; // the flags are the two top bits of the low word
  const flagged = commitLow >= RB_MISSED_EVENTS;
  const stored = commitLow % RB_MISSED_EVENTS >= RB_MISSED_STORED;
  const start = page.data.offset;
  const end = Math.min(start + used, view.byteLength);
  let missed = 0;
  if (flagged)
    missed =
      stored && end + page.commit.size <= view.byteLength
        ? page.commit.size === 8
          ? u64(view, end, le)
          : view.getUint32(end, le)
        : -1;
  let records = 0;
  let timeRecords = 0;
  let pos = start;
  while (pos + 4 <= end) {
    const [type, delta] = recordHeader(view.getUint32(pos, le), h, le);
    if (type === h.padding) {
      if (delta === 0) break; // the rest of the page is padding
      pos += 4 + view.getUint32(pos + 4, le);
      continue;
    }
    if (type === h.timeExtend) {
      ts += view.getUint32(pos + 4, le) * TS_SHIFT + delta;
      timeRecords++;
      pos += 8;
      continue;
    }
    if (type === h.timeStamp) {
      let abs = view.getUint32(pos + 4, le) * TS_SHIFT + delta;
      // rb_fix_abs_ts(): the record has 59 bits; the top 5 come from the time so far.
      const msb = Math.floor(ts / TS_MSB_UNIT) * TS_MSB_UNIT;
      if (msb > 0) {
        abs += msb;
        if (abs < ts) abs += TS_MSB_UNIT;
      }
      ts = abs;
      timeRecords++;
      pos += 8;
      continue;
    }
    if (type > h.dataMax) break; // not a type this layout knows: stop rather than misread
    let dataOff: number;
    let length: number;
    if (type === 0) {
      length = view.getUint32(pos + 4, le) - 4;
      dataOff = pos + 8;
    } else {
      length = type * 4;
      dataOff = pos + 4;
    }
    if (length < 0 || dataOff + length > end) break;
    ts += delta;
    records++;
    onRecord(ts, dataOff, length);
    pos = dataOff + length;
  }
  return { timeNs: u64(view, page.timestamp.offset, le), used, missed, records, timeRecords };
}

// ---------------------------------------------------------------------------------------------
// The two events the tracer reads, decoded

/** Commands to the reading worker (ctl[0], see tracefs-raw-worker.ts). */
export const CMD_RUN = 0;
export const CMD_DRAIN = 1;
export const CMD_STOP = 2;

export const KIND_STATE = 1;
export const KIND_CONNECT_EXIT = 2;
export const KIND_RETRANSMIT = 3;
export const KIND_TASK = 4;

/**
 * One decoded record: sock:inet_sock_set_state (KIND_STATE), syscalls:sys_exit_connect,
 * tcp:tcp_retransmit_skb (KIND_RETRANSMIT: its `state` in oldState, its `err` in ret), or
 * sched:sched_process_exec / sched_process_fork (KIND_TASK: two pids whose /proc facts just
 * changed, in ret and oldState; exec: the pid and old_pid, fork: the child twice).
 */
export interface RawEvent {
  kind: number;
  /** ns of the instance's trace_clock. */
  timeNs: number;
  cpu: number;
  /** common_pid: the thread on the CPU. */
  tid: number;
  /** KIND_STATE: AF_INET 2 / AF_INET6 10, ports (host order), the kernel's state numbers. */
  family: number;
  sport: number;
  dport: number;
  oldState: number;
  newState: number;
  /** %pI4 or %pI6c of the family's addresses, as the text output prints them. */
  local: string;
  remote: string;
  /** skaddr (the struct sock's address), low and high 32 bits. */
  skLo: number;
  skHi: number;
  /** KIND_CONNECT_EXIT: connect()'s return value. */
  ret: number;
}

/** %pI4 */
function ip4(view: DataView, off: number): string {
  return `${view.getUint8(off)}.${view.getUint8(off + 1)}.${view.getUint8(off + 2)}.${view.getUint8(off + 3)}`;
}

/** %pI6c (lib/vsprintf.c ip6_compressed_string): the longest run of 2+ zero words as "::", IPv4-mapped and ISATAP tails dotted. */
export function ip6c(view: DataView, off: number): string {
  const w: number[] = [];
  for (let i = 0; i < 8; i++) w.push(view.getUint16(off + 2 * i, false));
  const v4mapped = w[0] === 0 && w[1] === 0 && w[2] === 0 && w[3] === 0 && w[4] === 0 && w[5] === 0xffff;
  const isatap = (w[4]! | 0x0200) === 0x0200 && w[5] === 0x5efe;
  const useV4 = v4mapped || isatap;
  const range = useV4 ? 6 : 8;
  let longest = 1;
  let colonpos = -1;
  for (let i = 0; i < range; i++) {
    let run = 0;
    for (let j = i; j < range && w[j] === 0; j++) run++;
    if (run > longest) {
      longest = run;
      colonpos = i;
    }
  }
  let out = '';
  let needColon = false;
  for (let i = 0; i < range; i++) {
    if (i === colonpos) {
      if (needColon || i === 0) out += ':';
      out += ':';
      needColon = false;
      i += longest - 1;
      continue;
    }
    if (needColon) out += ':';
    out += w[i]!.toString(16);
    needColon = true;
  }
  if (useV4) {
    if (needColon) out += ':';
    out += ip4(view, off + 12);
  }
  return out;
}

/** A field's offset, checked to have the size the decoder reads. */
function fieldAt(format: EventFormat, name: string, sizes: number[]): number {
  const at = optionalField(format, name, sizes);
  if (at === undefined) throw new Error(`tracefs: ${format.name} has no field ${name}`);
  return at;
}

function optionalField(format: EventFormat, name: string, sizes: number[]): number | undefined {
  const f = [...format.fields, ...format.common].find((x) => x.name === name);
  if (!f) return undefined;
  if (!sizes.includes(f.size)) throw new Error(`tracefs: ${format.name}.${name} is ${f.size} bytes`);
  return f.offset;
}

type Decode = (view: DataView, off: number, ev: RawEvent) => void;

/** The socket fields inet_sock_set_state and tcp_retransmit_skb share. */
function socketDecoder(format: EventFormat, le: boolean): Decode {
  const o = {
    sk: fieldAt(format, 'skaddr', [8]),
    sport: fieldAt(format, 'sport', [2]),
    dport: fieldAt(format, 'dport', [2]),
    family: fieldAt(format, 'family', [2]),
    saddr: fieldAt(format, 'saddr', [4]),
    daddr: fieldAt(format, 'daddr', [4]),
    saddr6: fieldAt(format, 'saddr_v6', [16]),
    daddr6: fieldAt(format, 'daddr_v6', [16]),
  };
  return (view, off, ev) => {
    ev.skLo = view.getUint32(off + o.sk + (le ? 0 : 4), le);
    ev.skHi = view.getUint32(off + o.sk + (le ? 4 : 0), le);
    ev.sport = view.getUint16(off + o.sport, le);
    ev.dport = view.getUint16(off + o.dport, le);
    ev.family = view.getUint16(off + o.family, le);
    const v6 = ev.family === 10;
    ev.local = v6 ? ip6c(view, off + o.saddr6) : ip4(view, off + o.saddr);
    ev.remote = v6 ? ip6c(view, off + o.daddr6) : ip4(view, off + o.daddr);
  };
}

function stateDecoder(format: EventFormat, le: boolean): Decode {
  const socket = socketDecoder(format, le);
  const oldAt = fieldAt(format, 'oldstate', [4]);
  const newAt = fieldAt(format, 'newstate', [4]);
  return (view, off, ev) => {
    ev.kind = KIND_STATE;
    socket(view, off, ev);
    ev.oldState = view.getInt32(off + oldAt, le);
    ev.newState = view.getInt32(off + newAt, le);
  };
}

function retransmitDecoder(format: EventFormat, le: boolean): Decode {
  const socket = socketDecoder(format, le);
  const stateAt = fieldAt(format, 'state', [4]);
  const errAt = optionalField(format, 'err', [4]);
  return (view, off, ev) => {
    ev.kind = KIND_RETRANSMIT;
    socket(view, off, ev);
    ev.oldState = view.getInt32(off + stateAt, le);
    ev.ret = errAt === undefined ? 0 : view.getInt32(off + errAt, le);
  };
}

function connectExitDecoder(format: EventFormat, le: boolean): Decode {
  const ret = fieldAt(format, 'ret', [8]);
  return (view, off, ev) => {
    ev.kind = KIND_CONNECT_EXIT;
    // long: errno values fit the low word; the high word carries the sign.
    const lo = view.getUint32(off + ret + (le ? 0 : 4), le);
    const hi = view.getInt32(off + ret + (le ? 4 : 0), le);
    ev.ret = hi * 2 ** 32 + lo;
  };
}

/**
 * A task event: `a` and `b` name the pid fields to report (exec: the new program's pid and the
 * thread that called execve(); fork: the child, twice).
 */
function taskDecoder(format: EventFormat, le: boolean, a: string, b: string): Decode {
  const aAt = fieldAt(format, a, [4]);
  const bAt = fieldAt(format, b, [4]);
  return (view, off, ev) => {
    ev.kind = KIND_TASK;
    ev.ret = view.getInt32(off + aAt, le);
    ev.oldState = view.getInt32(off + bAt, le);
  };
}

/** Formats of the events a reader decodes; records of other ids are skipped. */
export interface RawFormats {
  state?: EventFormat;
  connectExit?: EventFormat;
  retransmit?: EventFormat;
  /** sched:sched_process_exec: the task runs another program (another command) from here on. */
  exec?: EventFormat;
  /** sched:sched_process_fork: a new task, whose tid may be an old one's. */
  fork?: EventFormat;
}

/** Decodes pages of one instance into RawEvents. */
export class RawEventParser {
  private readonly decoders = new Map<number, Decode>();
  private readonly typeOff: number;
  private readonly pidOff: number;
  /** Events lost before pages read so far (stored counts; a flag without a count counts 1). */
  missed = 0;
  /** Pages that said events were lost but had no room for the count. */
  missedUncounted = 0;

  constructor(
    readonly layout: RawLayout,
    formats: RawFormats,
  ) {
    const any = formats.state ?? formats.connectExit ?? formats.retransmit;
    if (!any) throw new Error('tracefs: no event format to decode');
    this.typeOff = fieldAt(any, 'common_type', [2]);
    this.pidOff = fieldAt(any, 'common_pid', [4]);
    const le = layout.littleEndian;
    if (formats.state) this.decoders.set(formats.state.id, stateDecoder(formats.state, le));
    if (formats.connectExit)
      this.decoders.set(formats.connectExit.id, connectExitDecoder(formats.connectExit, le));
    if (formats.retransmit)
      this.decoders.set(formats.retransmit.id, retransmitDecoder(formats.retransmit, le));
    if (formats.exec) this.decoders.set(formats.exec.id, taskDecoder(formats.exec, le, 'pid', 'old_pid'));
    if (formats.fork)
      this.decoders.set(formats.fork.id, taskDecoder(formats.fork, le, 'child_pid', 'child_pid'));
  }

  /** Append the page's events (in page order) to `out`. */
  parse(view: DataView, cpu: number, out: RawEvent[]): PageInfo {
    const le = this.layout.littleEndian;
    const info = parsePage(view, this.layout, (timeNs, off, length) => {
      if (length < 8) return;
      const decode = this.decoders.get(view.getUint16(off + this.typeOff, le));
      if (!decode) return;
      const ev: RawEvent = {
        kind: 0,
        timeNs,
        cpu,
        tid: view.getInt32(off + this.pidOff, le),
        family: 0,
        sport: 0,
        dport: 0,
        oldState: 0,
        newState: 0,
        local: '',
        remote: '',
        skLo: 0,
        skHi: 0,
        ret: 0,
      };
      decode(view, off, ev);
      out.push(ev);
    });
    if (info.missed > 0) this.missed += info.missed;
    else if (info.missed < 0) {
      this.missed += 1;
      this.missedUncounted++;
    }
    return info;
  }
}

// ---------------------------------------------------------------------------------------------
// Batches between the reading thread and the main thread: columns, transferable

/** A batch's ints per event, and where each field is among them. */
export const RAW_STRIDE = 9;
export const RAW_TID = 2;
export const RAW_FAMILY = 3;
export const RAW_SPORT = 4;
export const RAW_DPORT = 5;
export const RAW_OLD = 6;
export const RAW_NEW = 7;
export const RAW_RET = 8;
const STRIDE = RAW_STRIDE;

/** Events in columns (typed arrays travel between threads without copying). */
export interface RawBatch {
  n: number;
  /** Per event: kind, cpu, tid, family, sport, dport, oldState, newState, ret. */
  ints: Int32Array;
  timeNs: Float64Array;
  /** skaddr low, high. */
  sk: Uint32Array;
  /** local, remote (state changes; '' otherwise). */
  addrs: string[];
}

export function packEvents(events: readonly RawEvent[], from: number, to: number): RawBatch {
  const n = to - from;
  const ints = new Int32Array(n * STRIDE);
  const timeNs = new Float64Array(n);
  const sk = new Uint32Array(n * 2);
  const addrs: string[] = new Array<string>(n * 2);
  for (let i = 0; i < n; i++) {
    const e = events[from + i]!;
    const b = i * STRIDE;
    ints[b] = e.kind;
    ints[b + 1] = e.cpu;
    ints[b + 2] = e.tid;
    ints[b + 3] = e.family;
    ints[b + 4] = e.sport;
    ints[b + 5] = e.dport;
    ints[b + 6] = e.oldState;
    ints[b + 7] = e.newState;
    ints[b + 8] = e.ret;
    timeNs[i] = e.timeNs;
    sk[2 * i] = e.skLo;
    sk[2 * i + 1] = e.skHi;
    addrs[2 * i] = e.local;
    addrs[2 * i + 1] = e.remote;
  }
  return { n, ints, timeNs, sk, addrs };
}

export function unpackEvent(b: RawBatch, i: number): RawEvent {
  const o = i * STRIDE;
  return {
    kind: b.ints[o]!,
    cpu: b.ints[o + 1]!,
    tid: b.ints[o + 2]!,
    family: b.ints[o + 3]!,
    sport: b.ints[o + 4]!,
    dport: b.ints[o + 5]!,
    oldState: b.ints[o + 6]!,
    newState: b.ints[o + 7]!,
    ret: b.ints[o + 8]!,
    timeNs: b.timeNs[i]!,
    skLo: b.sk[2 * i]!,
    skHi: b.sk[2 * i + 1]!,
    local: b.addrs[2 * i]!,
    remote: b.addrs[2 * i + 1]!,
  };
}
