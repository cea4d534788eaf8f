/**
 * The tracer's window on minisockets: the kernel hands a closing socket's TIME_WAIT (and orphaned
 * FIN_WAIT2) phase to a `inet_timewait_sock` that no tracepoint reports, so the tracer looks its
 * 4-tuple up in a sock_diag dump. This function runs in the network namespace it is called in,
 * so a tracer in one namespace can look minisockets up in another through a sandbox host's
 * `call('observe/trace-diag.js', 'lookupMinisockets', [queries])`. Arguments and result are JSON.
 */
import { dumpTcp, type Endpoint } from './sockdiag.js';
import { TCP_FIN_WAIT2, TCP_TIME_WAIT } from './sockdiag-states.js';
import { isIPv6 } from 'node:net';

export interface TupleQuery {
  family: 4 | 6;
  local: Endpoint;
  remote: Endpoint;
  /**
   * The network namespace (inode) the socket lives in, when the tracer knows it: a look-up
   * answers in the namespace it runs in and echoes this field back.
   */
  netns?: number;
}

export interface MinisocketFound extends TupleQuery {
  /** The minisocket's substate as ss names it: 'TIME-WAIT' or 'FIN-WAIT-2'. */
  state: string;
  /** idiag_expires: ms left on its timer (for TIME-WAIT: until it leaves the table). */
  expiresMs: number;
}

/** Where minisockets are looked up: the tracer's own namespace by default, or a sandbox host. */
export type MinisocketLookup = (queries: TupleQuery[]) => Promise<MinisocketFound[]>;

/** sock_diag reports minisockets with the TIME_WAIT timer (3) and no inode. */
const TIMER_TIME_WAIT = 3;

/** Expand an IPv6 address to 8 four-digit groups so differently compressed spellings compare equal. */
function expandV6(addr: string): string {
  let text = addr.toLowerCase();
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = text.slice(0, dotted.index) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.map((g) => g.padStart(4, '0')).join(':');
}

/** The address in one canonical spelling (IPv6 expanded), for tuple keys. */
export function canonicalAddress(addr: string): string {
  // Per traced event: an IPv4 address (no colon) skips isIPv6's costly regex.
  return addr.includes(':') && isIPv6(addr) ? expandV6(addr) : addr;
}

/** A 4-tuple as one string key: "4|127.0.0.1|40000|127.0.0.1|8080". */
export function tupleKey(t: TupleQuery): string {
  return `${t.family}|${canonicalAddress(t.local.address)}|${t.local.port}|${canonicalAddress(t.remote.address)}|${t.remote.port}`;
}

/** Find the given 4-tuples among this namespace's TIME-WAIT / FIN-WAIT-2 minisockets. */
export function lookupMinisockets(queries: TupleQuery[]): Promise<MinisocketFound[]> {
  return Promise.resolve(lookupMinisocketsHere(queries));
}

/** The same, synchronously: in the namespace of the calling thread (readNetns runs it in another). */
export function lookupMinisocketsHere(queries: TupleQuery[]): MinisocketFound[] {
  if (queries.length === 0) return [];
  const wanted = new Map(queries.map((q) => [tupleKey(q), q]));
  const families = [...new Set(queries.map((q) => q.family))];
  const found: MinisocketFound[] = [];
  for (const family of families) {
    for (const rec of dumpTcp({ family, states: [TCP_FIN_WAIT2, TCP_TIME_WAIT] })) {
      if (rec.timer !== TIMER_TIME_WAIT || rec.inode !== 0) continue;
      const q = wanted.get(tupleKey(rec));
      if (q) found.push({ ...q, state: rec.state, expiresMs: rec.expiresMs });
    }
  }
  return found;
}
