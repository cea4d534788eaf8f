/**
 * Counting length-prefixed messages (4-byte big-endian length, then the body) in a byte stream
 * without keeping the bodies: the server only needs to know where each message ends, so memory per
 * connection stays at 4 bytes whatever the peer sends.
 */

export const FRAME_HEADER_BYTES = 4;

export class FrameCounter {
  private readonly header = Buffer.alloc(FRAME_HEADER_BYTES);
  private headerHave = 0;
  private bodyLeft = 0;
  private inBody = false;
  /** Set when a header announced a body over the limit; feed() then stops looking. */
  overLimit = false;

  /** @param maxBodyBytes a length over this is refused (the caller closes the connection). */
  constructor(private readonly maxBodyBytes: number) {}

  /**
   * Consume a chunk; returns the number of messages it completed. As soon as a header announces a
   * body larger than maxBodyBytes, sets `overLimit` and ignores the rest (the caller cuts the
   * connection off); messages completed before it in the same chunk are still counted.
   */
  feed(chunk: Buffer): number {
    let done = 0;
    if (this.overLimit) return 0;
    let off = 0;
    const len = chunk.length;
    while (off < len) {
      if (this.inBody) {
        const take = Math.min(this.bodyLeft, len - off);
        this.bodyLeft -= take;
        off += take;
        if (this.bodyLeft === 0) {
          this.inBody = false;
          done++;
        }
        continue;
      }
      const take = Math.min(FRAME_HEADER_BYTES - this.headerHave, len - off);
      chunk.copy(this.header, this.headerHave, off, off + take);
      this.headerHave += take;
      off += take;
      if (this.headerHave < FRAME_HEADER_BYTES) break;
      this.headerHave = 0;
      const body = this.header.readUInt32BE(0);
      if (body > this.maxBodyBytes) {
        this.overLimit = true;
        return done;
      }
      if (body === 0) done++;
      else {
        this.bodyLeft = body;
        this.inBody = true;
      }
    }
    return done;
  }

  /** True between messages (no partial header or body pending). */
  get idle(): boolean {
    return !this.inBody && this.headerHave === 0;
  }
}

/** A message framed for the wire: 4-byte big-endian length, then the bytes. */
export function frame(body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + body.length);
  out.writeUInt32BE(body.length, 0);
  body.copy(out, FRAME_HEADER_BYTES);
  return out;
}
