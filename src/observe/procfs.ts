/**
 * The fallback table reader: /proc/net/tcp and /proc/net/tcp6 (of the reader's own network
 * namespace), used only where netlink sock_diag is denied. Each line is rewritten into the
 * inet_diag_msg layout (sockdiag-layout.ts) so census treats both sources alike. Read in 64 KiB
 * chunks; no whole-file string.
 *
 * Line format (net/ipv4/tcp_ipv4.c get_tcp4_sock / get_timewait4_sock):
 *   sl local(addr:port) rem(addr:port) st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
 * Addresses are the __be32 words printed as host-order hex (%08X), ports host-order hex, and
 * tm->when is in clock ticks (USER_HZ = 100 on every Linux ABI), so ms = ticks * 10.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { AF_INET, AF_INET6 } from '../sockets/constants.js';
import { OWN_PROC_NET } from './counters.js';
import { DIAG, type RecordPuller, type RecordVisitor } from './sockdiag-layout.js';

const USER_HZ_MS = 10;

/** Pull /proc/net/tcp{,6} lines as inet_diag_msg records, keeping states in `mask`. */
export function procNetTcpPuller(family: 4 | 6, mask: number, procNet = OWN_PROC_NET): RecordPuller {
  const file = `${procNet}/${family === 4 ? 'tcp' : 'tcp6'}`;
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    // No IPv6 in this namespace: nothing to list.
    if (family === 6 && (err as NodeJS.ErrnoException).code === 'ENOENT') fd = undefined;
    else throw err;
  }
  // Lines are < 200 bytes: a partial line at the end of a read moves to the front of `work`.
  const work = Buffer.allocUnsafe(64 * 1024);
  const rec = Buffer.alloc(DIAG.size);
  let have = 0;
  let done = fd === undefined;
  let count = 0;
  return {
    get count() {
      return count;
    },
    close() {
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    },
    pull(visit) {
      if (done || fd === undefined) return false;
      const n = readSync(fd, work, have, work.length - have, null);
      const end = have + n;
      let start = 0;
      for (let nl = work.indexOf(10, 0); nl >= 0 && nl < end; nl = work.indexOf(10, start)) {
        count += parseLineBytes(work, start, nl, family, mask, rec, visit);
        start = nl + 1;
      }
      if (n === 0) {
        done = true;
        if (start < end) count += parseLineBytes(work, start, end, family, mask, rec, visit);
        return false;
      }
      work.copy(work, 0, start, end);
      have = end - start;
      return true;
    },
  };
}

/** Rewrite one /proc/net/tcp line into `rec` and visit it (header and blank lines skipped). */
export function parseLine(
  line: string,
  family: 4 | 6,
  mask: number,
  rec: Buffer,
  visit: RecordVisitor,
): void {
  const b = Buffer.from(line, 'latin1');
  parseLineBytes(b, 0, b.length, family, mask, rec, visit);
}

const SPACE = 0x20;
const COLON = 0x3a;

/** Value of the hex digits in b[from, to). */
function hex(b: Buffer, from: number, to: number): number {
  let v = 0;
  for (let i = from; i < to; i++) {
    const c = b[i]!;
    v = v * 16 + (c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x57);
  }
  return v;
}

function dec(b: Buffer, from: number, to: number): number {
  let v = 0;
  for (let i = from; i < to; i++) v = v * 10 + (b[i]! - 0x30);
  return v;
}

/**
 * The same for the bytes b[from, to): fields are found by skipping spaces, numbers read straight
 * from the bytes (no strings: the fallback reads 100,000 lines in one go).
 */
export function parseLineBytes(
  b: Buffer,
  from: number,
  to: number,
  family: 4 | 6,
  mask: number,
  rec: Buffer,
  visit: RecordVisitor,
): number {
  // Token boundaries of the first 10 fields.
  const ts: number[] = tokens;
  let count = 0;
  let i = from;
  while (count < 10) {
    while (i < to && (b[i] === SPACE || b[i] === 9 || b[i] === 13)) i++;
    if (i >= to) return 0;
    const s = i;
    while (i < to && b[i] !== SPACE && b[i] !== 9) i++;
    ts[2 * count] = s;
    ts[2 * count + 1] = i;
    count++;
  }
  if (b[ts[1]! - 1] !== COLON) return 0; // the header line: "sl" has no colon
  const state = hex(b, ts[6]!, ts[7]!);
  if (!((mask >>> state) & 1)) return 0;
  rec.fill(0);
  rec[DIAG.family] = family === 4 ? AF_INET : AF_INET6;
  rec[DIAG.state] = state;
  endpoint(b, ts[2]!, ts[3]!, rec, DIAG.src, DIAG.sport);
  endpoint(b, ts[4]!, ts[5]!, rec, DIAG.dst, DIAG.dport);
  const q = b.indexOf(COLON, ts[8]!);
  rec.writeUInt32LE(hex(b, ts[8]!, q) >>> 0, DIAG.wqueue);
  rec.writeUInt32LE(hex(b, q + 1, ts[9]!) >>> 0, DIAG.rqueue);
  const t = b.indexOf(COLON, ts[10]!);
  const timer = hex(b, ts[10]!, t);
  const ticks = hex(b, t + 1, ts[11]!);
  rec[DIAG.timer] = timer;
  // A negative delta prints as a huge unsigned value; a timer due now has 0 left.
  rec.writeUInt32LE(timer && ticks < 0x80000000 ? Math.min(ticks * USER_HZ_MS, 0xffffffff) : 0, DIAG.expires);
  rec[DIAG.retrans] = Math.min(hex(b, ts[12]!, ts[13]!), 255);
  rec.writeUInt32LE(dec(b, ts[14]!, ts[15]!) >>> 0, DIAG.uid);
  rec.writeUInt32LE(dec(b, ts[18]!, ts[19]!) >>> 0, DIAG.inode);
  visit(rec, 0);
  return 1;
}

const tokens: number[] = new Array<number>(20).fill(0);

/** "0100007F:1F90" -> address bytes (network order) at `addrAt`, port (big-endian) at `portAt`. */
function endpoint(b: Buffer, from: number, to: number, rec: Buffer, addrAt: number, portAt: number): void {
  const colon = b.indexOf(COLON, from);
  // Each 32-bit word was printed from memory as a host-order (little-endian) integer.
  for (let w = 0; from + w * 8 + 8 <= colon; w++) {
    rec.writeUInt32LE(hex(b, from + w * 8, from + w * 8 + 8) >>> 0, addrAt + w * 4);
  }
  rec.writeUInt16BE(hex(b, colon + 1, to), portAt);
}
