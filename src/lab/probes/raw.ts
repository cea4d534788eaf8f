/**
 * Raw-socket probes that run INSIDE a sandbox host (`raw(host).fn(...)`, probes/remote.ts): watch
 * the TCP segments of one connection, and inject a crafted RST. The sequence number of the RST is
 * taken from the connection itself (the segments captured), never guessed.
 */
import {
  openRawTcp,
  drainRaw,
  sendRawTcp,
  TCP_FIN,
  TCP_SYN,
  TCP_RST,
  type TcpSegment,
} from '../../sockets/raw.js';
import { sys } from '../../sockets/syscalls.js';

/** Start capturing every TCP segment this host receives; returns the raw socket's fd. */
export async function capture(): Promise<{ fd: number }> {
  return { fd: openRawTcp() };
}

/**
 * The captured segments from `from` port to `to` port (drains the capture), and the sequence
 * number the receiver expects next from that sender: the highest seq + length (+1 for SYN, FIN).
 */
export async function expectedSeq(o: {
  fd: number;
  fromPort: number;
  toPort: number;
}): Promise<{ segments: number; nextSeq: number | null; sawFin: boolean }> {
  const segs = drainRaw(o.fd).filter((s) => s.sport === o.fromPort && s.dport === o.toPort);
  let nextSeq: number | null = null;
  let sawFin = false;
  for (const s of segs) {
    const end = (s.seq + s.payloadLength + (s.flags & TCP_SYN ? 1 : 0) + (s.flags & TCP_FIN ? 1 : 0)) >>> 0;
    if (s.flags & TCP_FIN) sawFin = true;
    // Sequence numbers wrap: "later" is within half the space ahead.
    if (nextSeq === null || (end - nextSeq) >>> 0 < 0x80000000) nextSeq = end;
  }
  return { segments: segs.length, nextSeq, sawFin };
}

/** The captured segments from `fromPort` to `toPort` (drains the capture). */
export async function segments(o: { fd: number; fromPort: number; toPort: number }): Promise<TcpSegment[]> {
  return drainRaw(o.fd).filter((s) => s.sport === o.fromPort && s.dport === o.toPort);
}

/** Send one RST (no ACK, no options) with the given sequence number. */
export async function sendRst(o: {
  fd: number;
  src: string;
  sport: number;
  dst: string;
  dport: number;
  seq: number;
}): Promise<{ sent: true }> {
  const seg: Omit<TcpSegment, 'payloadLength'> = {
    src: o.src,
    dst: o.dst,
    sport: o.sport,
    dport: o.dport,
    seq: o.seq,
    ack: 0,
    flags: TCP_RST,
    window: 0,
  };
  sendRawTcp(o.fd, seg);
  return { sent: true };
}

export async function closeCapture(o: { fd: number }): Promise<{ closed: boolean }> {
  return { closed: sys.close(o.fd) === 0 };
}
