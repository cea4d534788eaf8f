/**
 * A binary min-heap of timed events (time, a, b), for the one kind of timer the model arms out of
 * time order: the peer's FIN, whose delay after the client's close varies per connection
 * (ModelScenario.peerCloseDelaysMs). Ties leave in no particular order.
 */
export class EventHeap {
  private times: number[] = [];
  private as: number[] = [];
  private bs: number[] = [];

  get size(): number {
    return this.times.length;
  }

  /** The earliest event's time, or Infinity when empty. */
  peekTime(): number {
    return this.times.length === 0 ? Infinity : this.times[0]!;
  }

  peekA(): number {
    return this.as[0]!;
  }

  peekB(): number {
    return this.bs[0]!;
  }

  push(time: number, a: number, b: number): void {
    let i = this.times.length;
    this.times.push(time);
    this.as.push(a);
    this.bs.push(b);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.times[parent]! <= time) break;
      this.move(parent, i);
      i = parent;
    }
    this.set(i, time, a, b);
  }

  /** Drop the earliest event. */
  shift(): void {
    const n = this.times.length - 1;
    const time = this.times[n]!;
    const a = this.as[n]!;
    const b = this.bs[n]!;
    this.times.pop();
    this.as.pop();
    this.bs.pop();
    if (n === 0) return;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && this.times[child + 1]! < this.times[child]!) child++;
      if (this.times[child]! >= time) break;
      this.move(child, i);
      i = child;
    }
    this.set(i, time, a, b);
  }

  private move(from: number, to: number): void {
    this.times[to] = this.times[from]!;
    this.as[to] = this.as[from]!;
    this.bs[to] = this.bs[from]!;
  }

  private set(i: number, time: number, a: number, b: number): void {
    this.times[i] = time;
    this.as[i] = a;
    this.bs[i] = b;
  }
}
