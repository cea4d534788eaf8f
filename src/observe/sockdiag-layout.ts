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
 * Called for each record with the inet_diag_msg bytes at `offset` in `buf`; the bytes are
 * valid only during the call (the buffer is reused). Read fields with the DIAG offsets.
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
