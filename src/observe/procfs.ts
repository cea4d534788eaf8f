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
import { DIAG, type RecordPuller, type RecordVisitor } from './sockdiag-layout.js';

const USER_HZ_MS = 10;

/** Pull /proc/net/tcp{,6} lines as inet_diag_msg records, keeping states in `mask`. */
export function procNetTcpPuller(family: 4 | 6, mask: number, path?: string): RecordPuller {
  const file = path ?? (family === 4 ? '/proc/net/tcp' : '/proc/net/tcp6');
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    // No IPv6 in this namespace: nothing to list.
    if (family === 6 && (err as NodeJS.ErrnoException).code === 'ENOENT') fd = undefined;
    else throw err;
  }
  const chunk = Buffer.allocUnsafe(64 * 1024);
  const rec = Buffer.alloc(DIAG.size);
  let carry = '';
  let done = fd === undefined;
  return {
    close() {
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    },
    pull(visit) {
      if (done || fd === undefined) return false;
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) {
        done = true;
        if (carry) parseLine(carry, family, mask, rec, visit);
        return false;
      }
      const text = carry + chunk.toString('latin1', 0, n);
      let start = 0;
      for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
        parseLine(text.slice(start, nl), family, mask, rec, visit);
        start = nl + 1;
      }
      carry = text.slice(start);
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
  const f = line.trim().split(/\s+/);
  if (f.length < 10 || !f[0]!.endsWith(':')) return;
  const state = parseInt(f[3]!, 16);
  if (!((mask >>> state) & 1)) return;
  rec.fill(0);
  rec[DIAG.family] = family === 4 ? AF_INET : AF_INET6;
  rec[DIAG.state] = state;
  writeEndpoint(f[1]!, rec, DIAG.src, DIAG.sport);
  writeEndpoint(f[2]!, rec, DIAG.dst, DIAG.dport);
  const [tx, rx] = f[4]!.split(':');
  const [tr, when] = f[5]!.split(':');
  rec[DIAG.timer] = parseInt(tr!, 16);
  const ticks = parseInt(when!, 16);
  // A negative delta prints as a huge unsigned value; a timer due now has 0 left.
  rec.writeUInt32LE(
    rec[DIAG.timer] && ticks < 0x80000000 ? Math.min(ticks * USER_HZ_MS, 0xffffffff) : 0,
    DIAG.expires,
  );
  rec[DIAG.retrans] = Math.min(parseInt(f[6]!, 16), 255);
  rec.writeUInt32LE(parseInt(rx!, 16) >>> 0, DIAG.rqueue);
  rec.writeUInt32LE(parseInt(tx!, 16) >>> 0, DIAG.wqueue);
  rec.writeUInt32LE(Number(f[7]) >>> 0, DIAG.uid);
  rec.writeUInt32LE(Number(f[9]) >>> 0, DIAG.inode);
  visit(rec, 0);
}

/** "0100007F:1F90" -> address bytes (network order) at `addrAt`, port (big-endian) at `portAt`. */
function writeEndpoint(text: string, rec: Buffer, addrAt: number, portAt: number): void {
  const colon = text.indexOf(':');
  const hex = text.slice(0, colon);
  // Each 32-bit word was printed from memory as a host-order (little-endian) integer.
  for (let w = 0; w * 8 < hex.length; w++) {
    rec.writeUInt32LE(parseInt(hex.slice(w * 8, w * 8 + 8), 16) >>> 0, addrAt + w * 4);
  }
  rec.writeUInt16BE(parseInt(text.slice(colon + 1), 16), portAt);
}
