/**
 * The server's length-prefix counter: however the stream is cut into chunks, it finds the same
 * messages, keeps no bodies, and stops at the first header over the limit.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FrameCounter, frame } from '../../src/traffic/server-framing.js';

function feedAll(counter: FrameCounter, stream: Buffer, cuts: number[]): number {
  let done = 0;
  let at = 0;
  for (const cut of [
    ...cuts.filter((c) => c > 0 && c < stream.length).sort((a, b) => a - b),
    stream.length,
  ]) {
    done += counter.feed(stream.subarray(at, cut));
    at = cut;
  }
  return done;
}

describe('FrameCounter', () => {
  it('counts messages whatever the chunking (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 20 }),
        fc.array(fc.nat(2000), { maxLength: 30 }),
        (bodies, cuts) => {
          const stream = Buffer.concat(bodies.map((b) => frame(Buffer.from(b))));
          const counter = new FrameCounter(40);
          expect(feedAll(counter, stream, cuts)).toBe(bodies.length);
          expect(counter.idle).toBe(true);
          expect(counter.overLimit).toBe(false);
        },
      ),
    );
  });

  it('a header over the limit stops it, after counting the messages before it in the same chunk', () => {
    const counter = new FrameCounter(4);
    const stream = Buffer.concat([
      frame(Buffer.from('ab')),
      frame(Buffer.alloc(0)),
      frame(Buffer.from('12345')),
      frame(Buffer.from('x')),
    ]);
    expect(counter.feed(stream)).toBe(2);
    expect(counter.overLimit).toBe(true);
    expect(counter.feed(frame(Buffer.from('x')))).toBe(0);
  });

  it('a body exactly at the limit is accepted; a partial message is not counted', () => {
    const counter = new FrameCounter(4);
    const whole = frame(Buffer.from('1234'));
    expect(counter.feed(whole.subarray(0, 6))).toBe(0);
    expect(counter.idle).toBe(false);
    expect(counter.feed(whole.subarray(6))).toBe(1);
    expect(counter.overLimit).toBe(false);
  });
});
