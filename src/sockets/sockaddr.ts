/**
 * struct sockaddr_in / sockaddr_in6 to and from Buffers. Ports and IPv4 addresses are in network
 * byte order inside the struct; the family field is host order (little-endian on the machines
 * twlab runs on).
 */
import { show } from '../common/parse.js';
import { isIP } from 'node:net';
import { AF_INET, AF_INET6 } from './constants.js';
import { UsageError } from '../common/errors.js';

export const SOCKADDR_IN_LEN = 16;
export const SOCKADDR_IN6_LEN = 28;
/** Large enough for either family (struct sockaddr_storage is 128). */
export const SOCKADDR_MAX_LEN = 128;

export interface SockAddr {
  address: string;
  port: number;
  family: 4 | 6;
}

export function familyOf(address: string): 4 | 6 {
  const f = isIP(address);
  if (f === 0) throw new UsageError(`${show(address)} is not an IP address (accepted: IPv4 or IPv6 literal)`);
  return f as 4 | 6;
}

/** Encode an address and port as the struct the kernel expects. */
export function encodeSockaddr(address: string, port: number): Buffer {
  if (familyOf(address) === 4) {
    const buf = Buffer.alloc(SOCKADDR_IN_LEN);
    buf.writeUInt16LE(AF_INET, 0);
    buf.writeUInt16BE(port, 2);
    const parts = address.split('.').map(Number);
    for (let i = 0; i < 4; i++) buf[4 + i] = parts[i]!;
    return buf;
  }
  const buf = Buffer.alloc(SOCKADDR_IN6_LEN);
  buf.writeUInt16LE(AF_INET6, 0);
  buf.writeUInt16BE(port, 2);
  ipv6ToBytes(address).copy(buf, 8);
  return buf;
}

/** Decode a sockaddr the kernel filled in (getsockname, accept). */
export function decodeSockaddr(buf: Buffer): SockAddr {
  const family = buf.readUInt16LE(0);
  const port = buf.readUInt16BE(2);
  if (family === AF_INET) return { address: `${buf[4]}.${buf[5]}.${buf[6]}.${buf[7]}`, port, family: 4 };
  if (family === AF_INET6) return { address: bytesToIpv6(buf.subarray(8, 24)), port, family: 6 };
  throw new Error(`unexpected address family ${family}`);
}

/** 16 bytes of an IPv6 address (handles "::" and an embedded IPv4 tail). */
export function ipv6ToBytes(address: string): Buffer {
  let text = address;
  const out = Buffer.alloc(16);
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const p = v4[1]!.split('.').map(Number);
    text = `${text.slice(0, v4.index)}${((p[0]! << 8) | p[1]!).toString(16)}:${((p[2]! << 8) | p[3]!).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/** Compressed text form of 16 address bytes, as Node prints it. */
export function bytesToIpv6(bytes: Buffer): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i));
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
  }
  // Longest run of zero groups (length >= 2) becomes "::".
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}
