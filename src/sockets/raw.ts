/**
 * Raw IPv4 TCP sockets: watch every TCP segment a host receives, and send a hand-made segment
 * (the lab's TIME_WAIT assassination experiment crafts an in-window RST with them). Only ever used
 * inside a sandbox host: opening one needs CAP_NET_RAW in the host's namespace.
 */
import { sys, check, lastErrno } from './syscalls.js';
import { AF_INET, SOCK_RAW, SOCK_NONBLOCK, SOCK_CLOEXEC, IPPROTO_TCP } from './constants.js';
import { encodeSockaddr } from './sockaddr.js';
import { EAGAIN, SyscallError } from './errno.js';

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;

/** One TCP segment as seen on the wire (IPv4). */
export interface TcpSegment {
  src: string;
  dst: string;
  sport: number;
  dport: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  payloadLength: number;
}

/** A nonblocking raw socket that receives a copy of every TCP segment delivered to this host. */
export function openRawTcp(): number {
  return check(sys.socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP), 'socket(SOCK_RAW)');
}

function ipText(buf: Buffer, at: number): string {
  return `${buf[at]}.${buf[at + 1]}.${buf[at + 2]}.${buf[at + 3]}`;
}

/** Parse an IPv4 packet carrying TCP (what a raw IPPROTO_TCP socket reads); null if it is not one. */
export function parseIpv4Tcp(pkt: Buffer): TcpSegment | null {
  if (pkt.length < 40 || pkt[0]! >> 4 !== 4 || pkt[9] !== IPPROTO_TCP) return null;
  const ihl = (pkt[0]! & 0x0f) * 4;
  const total = Math.min(pkt.readUInt16BE(2), pkt.length);
  const tcp = pkt.subarray(ihl, total);
  if (tcp.length < 20) return null;
  const doff = (tcp[12]! >> 4) * 4;
  return {
    src: ipText(pkt, 12),
    dst: ipText(pkt, 16),
    sport: tcp.readUInt16BE(0),
    dport: tcp.readUInt16BE(2),
    seq: tcp.readUInt32BE(4),
    ack: tcp.readUInt32BE(8),
    flags: tcp[13]!,
    window: tcp.readUInt16BE(14),
    payloadLength: Math.max(0, tcp.length - doff),
  };
}

/** Every segment waiting on a raw socket now (nonblocking: returns what is queued). */
export function drainRaw(fd: number, max = 10_000): TcpSegment[] {
  const out: TcpSegment[] = [];
  const buf = Buffer.alloc(65_536);
  for (let i = 0; i < max; i++) {
    const n = sys.recv(fd, buf, buf.length, 0);
    if (n < 0) {
      const e = lastErrno();
      if (e === EAGAIN) break;
      throw new SyscallError('recv(SOCK_RAW)', e);
    }
    const seg = parseIpv4Tcp(buf.subarray(0, n));
    if (seg) out.push(seg);
  }
  return out;
}

function ipBytes(address: string): Buffer {
  return Buffer.from(address.split('.').map(Number));
}

/** The Internet checksum (RFC 1071) over the IPv4 pseudo header and the TCP segment. */
export function tcpChecksum(src: string, dst: string, segment: Buffer): number {
  const pseudo = Buffer.alloc(12);
  ipBytes(src).copy(pseudo, 0);
  ipBytes(dst).copy(pseudo, 4);
  pseudo[9] = IPPROTO_TCP;
  pseudo.writeUInt16BE(segment.length, 10);
  const all = Buffer.concat([pseudo, segment, segment.length % 2 ? Buffer.alloc(1) : Buffer.alloc(0)]);
  let sum = 0;
  for (let i = 0; i < all.length; i += 2) sum += all.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** A 20-byte TCP header (no options, no payload) with a valid checksum. */
export function buildTcpSegment(seg: Omit<TcpSegment, 'payloadLength'>): Buffer {
  const b = Buffer.alloc(20);
  b.writeUInt16BE(seg.sport, 0);
  b.writeUInt16BE(seg.dport, 2);
  b.writeUInt32BE(seg.seq >>> 0, 4);
  b.writeUInt32BE(seg.ack >>> 0, 8);
  b[12] = 5 << 4;
  b[13] = seg.flags;
  b.writeUInt16BE(seg.window, 14);
  b.writeUInt16BE(tcpChecksum(seg.src, seg.dst, b), 16);
  return b;
}

/**
 * Send a crafted segment from a raw socket. The kernel adds the IP header; its source address is
 * the route's, so `seg.src` must be that address (it is in the checksum).
 */
export function sendRawTcp(fd: number, seg: Omit<TcpSegment, 'payloadLength'>): void {
  const pkt = buildTcpSegment(seg);
  const to = encodeSockaddr(seg.dst, 0);
  check(sys.sendto(fd, pkt, pkt.length, 0, to, to.length), 'sendto(SOCK_RAW)', `${seg.dst}`);
}
