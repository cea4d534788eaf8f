/**
 * A growable first-in-first-out queue of timed events (time, a, b) in typed arrays. Every timer
 * the model keeps (closes, TIME_WAIT expiries, reuse eligibility) is armed in time order, so a
 * FIFO per kind is a priority queue for free.
 */
export class EventFifo {
  private times: Float64Array;
  private as: Int32Array;
  private bs: Int32Array;
  private head = 0;
  private length = 0;

  constructor(capacity = 1024) {
    this.times = new Float64Array(capacity);
    this.as = new Int32Array(capacity);
    this.bs = new Int32Array(capacity);
  }

  get size(): number {
    return this.length;
  }

  /** The time of the oldest event, or Infinity when empty. */
  peekTime(): number {
    return this.length === 0 ? Infinity : this.times[this.head]!;
  }

  peekA(): number {
    return this.as[this.head]!;
  }

  peekB(): number {
    return this.bs[this.head]!;
  }

  push(time: number, a: number, b: number): void {
    if (this.length === this.times.length) this.grow();
    const i = (this.head + this.length) % this.times.length;
    this.times[i] = time;
    this.as[i] = a;
    this.bs[i] = b;
    this.length++;
  }

  shift(): void {
    this.head = (this.head + 1) % this.times.length;
    this.length--;
  }

  private grow(): void {
    const cap = this.times.length * 2;
    const times = new Float64Array(cap);
    const as = new Int32Array(cap);
    const bs = new Int32Array(cap);
    for (let k = 0; k < this.length; k++) {
      const i = (this.head + k) % this.times.length;
      times[k] = this.times[i]!;
      as[k] = this.as[i]!;
      bs[k] = this.bs[i]!;
    }
    this.times = times;
    this.as = as;
    this.bs = bs;
    this.head = 0;
  }
}
