/**
 * The kernel's own teardown counters, next to the socket table: /proc/net/sockstat{,6}
 * (sockets in use, orphans, TIME_WAIT buckets) and TcpExt from /proc/net/netstat (TW,
 * TWRecycled, TWKilled, TCPTimeWaitOverflow, ...). Both are read in the caller's namespace;
 * the TCP "orphan" count and memory are kernel-wide.
 */
import { readFileSync } from 'node:fs';

/**
 * /proc/net as the calling thread sees it. /proc/net is /proc/self/net, the namespace of the
 * process's main thread; a thread that entered another namespace (sockets/netns.ts) reads its own
 * through thread-self. Another process's view is /proc/PID/net.
 */
export const OWN_PROC_NET = '/proc/thread-self/net';

export interface Sockstat {
  /** TCP sockets in use (IPv4 table; excludes TIME_WAIT). */
  inuse: number;
  orphan: number;
  /** TIME_WAIT minisockets (tw buckets). */
  tw: number;
  alloc: number;
  /** TCP memory in pages. */
  mem: number;
  /** TCP6: inuse from /proc/net/sockstat6. */
  inuse6: number;
}

/** The TcpExt counters twlab shows (every one present is reported; absent ones are omitted). */
export const TCPEXT_KEYS = [
  'TW',
  'TWRecycled',
  'TWKilled',
  'TCPTimeWaitOverflow',
  'PAWSEstab',
  'PAWSTimewait',
  'TCPAbortOnClose',
  'TCPAbortOnData',
  'TCPAbortOnLinger',
  'TCPAbortOnTimeout',
  'TCPAbortOnMemory',
  'TCPAbortFailed',
  'ListenOverflows',
  'ListenDrops',
] as const;

export interface Counters {
  sockstat: Sockstat;
  tcpExt: Record<string, number>;
}

function readOptional(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** "TCP: inuse 5 orphan 0 tw 2 alloc 7 mem 1" -> {inuse: 5, ...} for the line with `prefix`. */
export function parseSockstatLine(text: string, prefix: string): Record<string, number> {
  const line = text.split('\n').find((l) => l.startsWith(`${prefix}:`));
  const out: Record<string, number> = {};
  if (!line) return out;
  const words = line
    .slice(prefix.length + 1)
    .trim()
    .split(/\s+/);
  for (let i = 0; i + 1 < words.length; i += 2) out[words[i]!] = Number(words[i + 1]);
  return out;
}

export function readSockstat(procNet = OWN_PROC_NET): Sockstat {
  const v4 = parseSockstatLine(readOptional(`${procNet}/sockstat`), 'TCP');
  const v6 = parseSockstatLine(readOptional(`${procNet}/sockstat6`), 'TCP6');
  return {
    inuse: v4['inuse'] ?? 0,
    orphan: v4['orphan'] ?? 0,
    tw: v4['tw'] ?? 0,
    alloc: v4['alloc'] ?? 0,
    mem: v4['mem'] ?? 0,
    inuse6: v6['inuse'] ?? 0,
  };
}

/** All counters of a "Prefix: names" / "Prefix: values" line pair (/proc/net/netstat, snmp). */
export function parseNetstatPairs(text: string, prefix: string): Record<string, number> {
  const lines = text.split('\n').filter((l) => l.startsWith(`${prefix}:`));
  const out: Record<string, number> = {};
  if (lines.length < 2) return out;
  const names = lines[0]!.split(/\s+/).slice(1);
  const values = lines[1]!.split(/\s+/).slice(1);
  names.forEach((n, i) => {
    if (values[i] !== undefined) out[n] = Number(values[i]);
  });
  return out;
}

export function readTcpExt(
  keys: readonly string[] = TCPEXT_KEYS,
  procNet = OWN_PROC_NET,
): Record<string, number> {
  const all = parseNetstatPairs(readOptional(`${procNet}/netstat`), 'TcpExt');
  const out: Record<string, number> = {};
  for (const k of keys) if (all[k] !== undefined) out[k] = all[k];
  return out;
}

export function readCounters(procNet = OWN_PROC_NET): Counters {
  return { sockstat: readSockstat(procNet), tcpExt: readTcpExt(TCPEXT_KEYS, procNet) };
}
