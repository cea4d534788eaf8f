/**
 * The record layout every table reader shares: struct inet_diag_msg (include/uapi/linux/
 * inet_diag.h). Netlink hands these bytes over as they are; the /proc/net/tcp reader writes
 * its lines into the same layout, so census and decoders have one code path.
 */

/** Byte offsets inside struct inet_diag_msg (72 bytes). */
export const DIAG = {
  family: 0,
  state: 1,
  timer: 2,
  retrans: 3,
  /** be16 */
  sport: 4,
  /** be16 */
  dport: 6,
  /** be32[4]: IPv4 uses the first 4 bytes */
  src: 8,
  dst: 24,
  ifindex: 40,
  /** host order from here on */
  expires: 52,
  rqueue: 56,
  wqueue: 60,
  uid: 64,
  inode: 68,
  size: 72,
} as const;

/**
 * The same record as 32-bit words (host order, little-endian), for hot loops: one load instead of
 * four byte loads. Index: (offset >> 2) + WORD.x, in the view wordsOf(buf) gives.
 */
export const WORD = {
  /** family | state << 8 | timer << 16 | retrans << 24 */
  head: 0,
  /** the two be16 ports as stored: sport bytes in bits 0-15, dport bytes in bits 16-31 */
  ports: 1,
  /** first word of each address (the whole IPv4 address), network byte order as stored */
  src: 2,
  dst: 6,
  expires: 13,
} as const;

/** An Int32Array over buf's bytes (records are 4-byte aligned: see RecordVisitor). */
export function wordsOf(buf: Buffer): Int32Array {
  return new Int32Array(buf.buffer, buf.byteOffset, buf.length >> 2);
}

/**
 * Called for each record with the inet_diag_msg bytes at `offset` in `buf`; the bytes are
 * valid only during the call (the buffer is reused). Read fields with the DIAG offsets. Records
 * start 4-byte aligned in memory (netlink messages are NLMSG_ALIGNed and the sources allocate
 * their buffers unpooled), so wordsOf(buf) may view them as WORDs.
 */
export type RecordVisitor = (buf: Buffer, offset: number) => void;

/**
 * A source of raw records pulled one chunk at a time (one netlink datagram, one read() of
 * /proc): pull() visits the records of the next chunk and returns false once the dump is over.
 */
export interface RecordPuller {
  pull(visit: RecordVisitor): boolean;
  /** Records visited so far. */
  readonly count: number;
  close(): void;
}
