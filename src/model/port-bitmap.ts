/**
 * A set of port positions (port - low) with a cyclic "next member of this parity" search. The
 * kernel walks a port range one port at a time; the model keeps each parity in its own two-level
 * bitmap (a summary bit per 32-bit word), so the same walk costs a few word operations.
 */

/** One parity's members, indexed by pos >> 1. */
class Level2 {
  readonly words: Uint32Array;
  readonly summary: Uint32Array;

  constructor(n: number) {
    this.words = new Uint32Array(Math.ceil(n / 32) || 1);
    this.summary = new Uint32Array(Math.ceil(this.words.length / 32) || 1);
  }

  has(j: number): boolean {
    return ((this.words[j >>> 5]! >>> (j & 31)) & 1) === 1;
  }

  /** Sets j; false when it was already set. */
  add(j: number): boolean {
    const w = j >>> 5;
    const bit = 1 << (j & 31);
    const old = this.words[w]!;
    if (old & bit) return false;
    this.words[w] = old | bit;
    if (old === 0) this.summary[w >>> 5]! |= 1 << (w & 31);
    return true;
  }

  /** Clears j; false when it was not set. */
  delete(j: number): boolean {
    const w = j >>> 5;
    const bit = 1 << (j & 31);
    const old = this.words[w]!;
    if (!(old & bit)) return false;
    const now = old & ~bit;
    this.words[w] = now;
    if (now === 0) this.summary[w >>> 5]! &= ~(1 << (w & 31));
    return true;
  }

  /** Sets [0, n). */
  fill(n: number): void {
    const full = n >>> 5;
    this.words.fill(0xffffffff, 0, full);
    if (n & 31) this.words[full] = (1 << (n & 31)) - 1;
    const used = Math.ceil(n / 32);
    this.summary.fill(0xffffffff, 0, used >>> 5);
    if (used & 31) this.summary[used >>> 5] = (1 << (used & 31)) - 1;
  }

  /** The first member in [from, to), or -1. */
  first(from: number, to: number): number {
    if (from >= to) return -1;
    let w = from >>> 5;
    const bits = (this.words[w]! & (~0 << (from & 31))) >>> 0;
    if (bits !== 0) {
      const j = (w << 5) + lowBit(bits);
      return j < to ? j : -1;
    }
    // Next non-empty word, through the summary.
    w++;
    const lastWord = (to - 1) >>> 5;
    if (w > lastWord) return -1;
    let s = w >>> 5;
    let sbits = (this.summary[s]! & (~0 << (w & 31))) >>> 0;
    const lastS = lastWord >>> 5;
    for (;;) {
      if (sbits !== 0) {
        const word = (s << 5) + lowBit(sbits);
        if (word > lastWord) return -1;
        const j = (word << 5) + lowBit(this.words[word]!);
        return j < to ? j : -1;
      }
      if (++s > lastS) return -1;
      sbits = this.summary[s]!;
    }
  }
}

function lowBit(x: number): number {
  return 31 - Math.clz32(x & -x);
}

export class PortBitmap {
  private readonly byParity: [Level2, Level2];
  /** How many members the set holds. */
  count = 0;

  constructor(readonly size: number) {
    this.byParity = [new Level2((size + 1) >> 1), new Level2(size >> 1)];
  }

  /** Every position of [0, size): a fresh pool where all ports are free. */
  fillAll(): void {
    this.byParity[0].fill((this.size + 1) >> 1);
    this.byParity[1].fill(this.size >> 1);
    this.count = this.size;
  }

  has(pos: number): boolean {
    return this.byParity[(pos & 1) as 0 | 1].has(pos >>> 1);
  }

  add(pos: number): void {
    if (this.byParity[(pos & 1) as 0 | 1].add(pos >>> 1)) this.count++;
  }

  delete(pos: number): void {
    if (this.byParity[(pos & 1) as 0 | 1].delete(pos >>> 1)) this.count--;
  }

  /**
   * The first member at or after `start`, within [0, limit), wrapping to 0, that has the given
   * parity (0 even, 1 odd, -1 any). -1 when there is none.
   */
  nextCyclic(start: number, limit: number, parity: -1 | 0 | 1): number {
    return this.nextInRange(start, 0, limit, parity);
  }

  /** The same within [from, to), wrapping from `to` back to `from`. */
  nextInRange(start: number, from: number, to: number, parity: -1 | 0 | 1): number {
    if (parity === -1) {
      const a = this.nextInRange(start, from, to, 0);
      const b = this.nextInRange(start, from, to, 1);
      if (a < 0 || b < 0) return a < 0 ? b : a;
      const span = to - from;
      return (a - start + span) % span <= (b - start + span) % span ? a : b;
    }
    const bm = this.byParity[parity];
    // Positions of this parity in [x, y) are indices [ceil((x - p) / 2), ceil((y - p) / 2)).
    const jFrom = (from - parity + 1) >> 1;
    const jTo = (to - parity + 1) >> 1;
    const jStart = (start - parity + 1) >> 1;
    let j = bm.first(jStart, jTo);
    if (j < 0 && jStart > jFrom) j = bm.first(jFrom, Math.min(jStart, jTo));
    return j < 0 ? -1 : 2 * j + parity;
  }
}
