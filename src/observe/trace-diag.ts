/**
 * The tracer's window on minisockets: the kernel hands a closing socket's TIME_WAIT (and orphaned
 * FIN_WAIT2) phase to a `inet_timewait_sock` that no tracepoint reports, so the tracer looks its
 * 4-tuple up in a sock_diag dump. This function runs in the network namespace it is called in,
 * so a tracer in one namespace can look minisockets up in another through a sandbox host's
 * `call('observe/trace-diag.js', 'lookupMinisockets', [queries])`. Arguments and result are JSON.
 */
import { decodeRecord, dumpTcp, type Endpoint } from './sockdiag.js';
import { DIAG, WORD, wordsOf } from './sockdiag-layout.js';
import { TCP_FIN_WAIT2, TCP_TIME_WAIT, tcpStateName } from './sockdiag-states.js';
import { AF_INET } from '../sockets/constants.js';
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
  // Matched on the raw records (no decoded object, no string key per socket of the table: the
  // tracer asks every 200 ms about every TIME-WAIT it watches, tens of thousands under churn).
  // IPv4 queries by their words as the record stores them; other spellings by tupleKey.
  const wanted4 = new Map<number, Wanted4[]>();
  const wanted = new Map<string, TupleQuery>();
  for (const q of queries) {
    const w = q.family === 4 ? wanted4Of(q) : undefined;
    if (!w) {
      wanted.set(tupleKey(q), q);
      continue;
    }
    const list = wanted4.get(w.ports);
    const same = list?.find((o) => o.src === w.src && o.dst === w.dst);
    if (same)
      same.q = q; // the last of equal queries answers, as a map by key would
    else if (list) list.push(w);
    else wanted4.set(w.ports, [w]);
  }
  const families = [...new Set(queries.map((q) => q.family))];
  const found: MinisocketFound[] = [];
  let wordsBuf: Buffer | undefined;
  let words: Int32Array = scratchWords;
  for (const family of families) {
    dumpTcp({ family, states: [TCP_FIN_WAIT2, TCP_TIME_WAIT] }).scan((buf, off) => {
      if (buf !== wordsBuf) {
        wordsBuf = buf;
        words = wordsOf(buf);
      }
      const i = off >> 2;
      // family | state << 8 | timer << 16 (one load); the inode is the record's last word.
      const head = words[i + WORD.head]!;
      if (((head >> 16) & 0xff) !== TIMER_TIME_WAIT || words[i + (DIAG.inode >> 2)] !== 0) return;
      let q: TupleQuery | undefined;
      if ((head & 0xff) === AF_INET) {
        const src = words[i + WORD.src]!;
        const dst = words[i + WORD.dst]!;
        q = wanted4.get(words[i + WORD.ports]!)?.find((w) => w.src === src && w.dst === dst)?.q;
        if (!q && wanted.size === 0) return;
      }
      if (!q) {
        if (wanted.size === 0) return;
        q = wanted.get(tupleKey(decodeRecord(buf, off)));
        if (!q) return;
      }
      found.push({
        ...q,
        state: tcpStateName(buf[off + DIAG.state]!),
        expiresMs: buf.readUInt32LE(off + DIAG.expires),
      });
    });
  }
  return found;
}

/** An IPv4 query as the words of a record (sockdiag-layout.ts WORD) would hold it. */
interface Wanted4 {
  ports: number;
  src: number;
  dst: number;
  q: TupleQuery;
}

const wordScratch = Buffer.alloc(12);
const scratchWords = wordsOf(wordScratch);

/** undefined when an address is not in the dotted spelling a record's would print as. */
function wanted4Of(q: TupleQuery): Wanted4 | undefined {
  const src = ipv4Word(q.local.address);
  const dst = ipv4Word(q.remote.address);
  if (src === undefined || dst === undefined || !isPort(q.local.port) || !isPort(q.remote.port))
    return undefined;
  wordScratch.writeUInt16BE(q.local.port, 0);
  wordScratch.writeUInt16BE(q.remote.port, 2);
  return { ports: scratchWords[0]!, src, dst, q };
}

function isPort(p: number): boolean {
  return Number.isInteger(p) && p >= 0 && p <= 0xffff;
}

/** Address text -> its first record word (network order as stored), or null; a host has few. */
const ipv4Words = new Map<string, number | null>();

function ipv4Word(address: string): number | undefined {
  let w = ipv4Words.get(address);
  if (w === undefined) {
    w = parseIpv4Word(address);
    if (ipv4Words.size >= 10_000) ipv4Words.clear();
    ipv4Words.set(address, w);
  }
  return w ?? undefined;
}

function parseIpv4Word(address: string): number | null {
  const parts = address.split('.');
  if (parts.length !== 4) return null;
  for (let k = 0; k < 4; k++) {
    const n = Number(parts[k]);
    // Exactly as addressAt() prints a record's: decimal bytes without leading zeros.
    if (!(n >= 0 && n <= 255) || String(n) !== parts[k]) return null;
    wordScratch[4 + k] = n;
  }
  return scratchWords[1]!;
}
