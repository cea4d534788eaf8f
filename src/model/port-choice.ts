/**
 * Which local port the kernel gives a new socket, as the two port searches of net/ipv4 do it.
 * A pool's `avail` set holds the positions (port - low) the search would accept right now; these
 * functions only decide the order of the walk and the random draws, so the outcome (a port, or
 * EADDRNOTAVAIL when none is acceptable) is the kernel's.
 */
import type { PortRange } from '../common/parse.js';
import type { PortBitmap } from './port-bitmap.js';
import type { Rng } from './rng.js';

export interface PortGeometry {
  /** The effective range [low, high] for the workload's sockets. */
  low: number;
  high: number;
  size: number;
  /** IP_LOCAL_PORT_RANGE is set: __inet_hash_connect() walks every port (step 1), no parity split. */
  localPorts: boolean;
  /** How many ports connect()'s walk covers: the range, made even when there is a parity split. */
  remaining: number;
}

/**
 * inet_sk_get_local_port_range() (net/ipv4/inet_connection_sock.c): the netns range, narrowed by
 * IP_LOCAL_PORT_RANGE where each bound falls inside it; it reports the per-socket option as set
 * whenever one was given. __inet_hash_connect() then does `high++; remaining = high - low; if
 * (!local_ports && remaining > 1) remaining &= ~1U;` so an odd-sized range loses one port per walk.
 */
export function portGeometry(range: PortRange, socketRange?: PortRange): PortGeometry {
  let low = range.low;
  let high = range.high;
  const localPorts = socketRange !== undefined;
  if (socketRange) {
    if (low <= socketRange.low && socketRange.low <= high) low = socketRange.low;
    if (low <= socketRange.high && socketRange.high <= high) high = socketRange.high;
  }
  const size = high - low + 1;
  const remaining = !localPorts && size > 1 ? size & ~1 : size;
  return { low, high, size, localPorts, remaining };
}

/** The parts of a pool the port searches read and update. */
export interface SearchPool {
  readonly avail: PortBitmap;
  perturb: number;
  readonly hashHi: number;
}

/**
 * __inet_hash_connect() (net/ipv4/inet_hashtables.c), RFC 6056 algorithm 4:
 *   offset = (table_perturb[index] + (port_offset >> 32)) % remaining; offset &= ~1 (no
 *   IP_LOCAL_PORT_RANGE); walk ports low+offset, +step (2, or 1 with IP_LOCAL_PORT_RANGE), wrapping
 *   by `remaining`; then, with step 2, the other parity (offset+1). The first acceptable port wins;
 *   on success `table_perturb[index] += max(i, get_random_u32_below(8) * step) + step`, where i is
 *   how far the walk went. The even ports go to connect(), "inet_csk_get_port() does the opposite
 *   choice". Returns the position taken, or -1 for EADDRNOTAVAIL.
 */
export function chooseConnectPort(p: SearchPool, geo: PortGeometry, rng: Rng, literal = false): number {
  if (p.avail.count === 0) return -1;
  const step = geo.localPorts ? 1 : 2;
  let offset = ((p.perturb + p.hashHi) >>> 0) % geo.remaining;
  if (!geo.localPorts) offset &= ~1;
  let pos: number;
  let i = 0;
  if (geo.remaining === geo.size && !literal) {
    // The walk is a plain cycle over [0, size) of one parity: let the bitmap find the first member.
    pos = p.avail.nextCyclic(offset, geo.size, geo.localPorts ? -1 : 0);
    if (pos >= 0) i = (pos - offset + geo.size) % geo.size;
    else if (!geo.localPorts && geo.remaining > 1) {
      offset++;
      pos = p.avail.nextCyclic(offset, geo.size, 1);
      if (pos >= 0) i = (pos - offset + geo.size) % geo.size;
    }
  } else if (!literal) {
    // An odd-sized range: the walk wraps by `remaining` (one less than the size), as below.
    [pos, i] = parityWalk(p.avail, offset, 0, geo.size, geo.remaining);
    if (pos < 0 && geo.remaining > 1) [pos, i] = parityWalk(p.avail, offset + 1, 0, geo.size, geo.remaining);
  } else {
    [pos, i] = literalConnectWalk(p.avail, geo, offset, step);
  }
  if (pos < 0) return -1;
  i = Math.max(i, rng.below(8) * step);
  p.perturb = (p.perturb + i + step) >>> 0;
  return pos;
}

/**
 * The kernel's walk by 2 over [from, to) that wraps by `remaining` (even, to - from or one less):
 * `for (i = 0; i < remaining; i += 2, rel += 2) { if (rel >= to) rel -= remaining; ... }` from
 * rel = start, found with the bitmap: the members of start's parity from start up, then those the
 * wrap lands on below start. Returns [position, i], or [-1, 0]. An odd-sized range thus costs a
 * few word operations too, not a step per port.
 */
export function parityWalk(
  avail: PortBitmap,
  start: number,
  from: number,
  to: number,
  remaining: number,
): [number, number] {
  const parity = (start & 1) as 0 | 1;
  let pos = avail.nextInRange(start, start, Math.min(to, start + remaining), parity);
  if (pos >= 0) return [pos, pos - start];
  // The first rel >= to of this parity, moved back by remaining.
  const wrapStart = to + ((to & 1) === parity ? 0 : 1) - remaining;
  pos = wrapStart < start ? avail.nextInRange(wrapStart, wrapStart, start, parity) : -1;
  return pos >= 0 ? [pos, pos + remaining - start] : [-1, 0];
}

/** The kernel's walk port by port (the reference the bitmap walks are checked against). */
export function literalConnectWalk(
  avail: PortBitmap,
  geo: PortGeometry,
  startOffset: number,
  step: number,
): [number, number] {
  let offset = startOffset;
  for (;;) {
    let rel = offset;
    for (let i = 0; i < geo.remaining; i += step, rel += step) {
      if (rel >= geo.size) rel -= geo.remaining;
      if (avail.has(rel)) return [rel, i];
    }
    if (geo.localPorts) return [-1, 0];
    offset++;
    if (!((offset & 1) === 1 && geo.remaining > 1)) return [-1, 0];
  }
}

/**
 * inet_csk_find_open_port() (net/ipv4/inet_connection_sock.c), for bind(addr, 0): with
 * SO_REUSEADDR (`attempt_half`) the lower half of the range first, then the upper one; in each,
 * `remaining &= ~1`, `offset = get_random_u32_below(remaining) | 1` (odd ports first, the
 * opposite of connect()), walk by 2, then `offset--` for the even ports. A port is taken when no
 * socket on it conflicts (inet_csk_bind_conflict with relax=false: any socket, TIME_WAIT too).
 */
export function chooseBindPort(p: SearchPool, geo: PortGeometry, rng: Rng, reuseAddr: boolean): number {
  if (p.avail.count === 0) return -1;
  const total = geo.size;
  const halves: Array<[number, number]> = [];
  if (reuseAddr && total >= 4) {
    const half = ((total >> 2) << 1) as number;
    halves.push([0, half], [half, total]);
  } else halves.push([0, total]);
  for (const [from, to] of halves) {
    let remaining = to - from;
    if (remaining > 1) remaining &= ~1;
    let offset = rng.below(remaining) | 1;
    for (;;) {
      if (remaining === to - from && remaining > 1) {
        // `from` is even, so a walk by 2 from from+offset is one parity of [from, to), cyclically.
        const pos = p.avail.nextInRange(from + offset, from, to, (offset & 1) as 0 | 1);
        if (pos >= 0) return pos;
      } else {
        const [pos] = parityWalk(p.avail, from + offset, from, to, remaining);
        if (pos >= 0) return pos;
      }
      offset--;
      if (offset & 1) break;
    }
  }
  return -1;
}
