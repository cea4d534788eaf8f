/**
 * The kernel's own teardown counters, next to the socket table: /proc/net/sockstat{,6}
 * (sockets in use, orphans, TIME_WAIT buckets) and TcpExt from /proc/net/netstat (TW,
 * TWRecycled, TWKilled, TCPTimeWaitOverflow, ...). Both are read in the caller's namespace;
 * the TCP "orphan" count and memory are kernel-wide.
 */
import { readFileSync } from 'node:fs';

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

export function readSockstat(): Sockstat {
  const v4 = parseSockstatLine(readOptional('/proc/net/sockstat'), 'TCP');
  const v6 = parseSockstatLine(readOptional('/proc/net/sockstat6'), 'TCP6');
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

export function readTcpExt(keys: readonly string[] = TCPEXT_KEYS): Record<string, number> {
  const all = parseNetstatPairs(readOptional('/proc/net/netstat'), 'TcpExt');
  const out: Record<string, number> = {};
  for (const k of keys) if (all[k] !== undefined) out[k] = all[k];
  return out;
}

export function readCounters(): Counters {
  return { sockstat: readSockstat(), tcpExt: readTcpExt() };
}
