/**
 * Read-only sysctl access for the namespace the process runs in (/proc/sys is per network
 * namespace for net.*). twlab never writes a sysctl outside src/sandbox; this file only reads.
 */
import { readFileSync } from 'node:fs';
import type { PortRange } from '../common/parse.js';

/** "net.ipv4.tcp_tw_reuse" or the short "tcp_tw_reuse" (taken as net.ipv4.*) -> its /proc path. */
export function sysctlPath(key: string): string {
  const full = key.includes('.') ? key : `net.ipv4.${key}`;
  return `/proc/sys/${full.replace(/\./g, '/')}`;
}

/**
 * The value (the kernel separates multi-valued sysctls with tabs: collapsed to single spaces), or
 * undefined when this kernel lacks the key. Any other failure (EACCES, ...) throws: this is the one
 * sysctl reader and its one error policy. Synchronous on purpose: /proc/sys/net shows the network
 * namespace of the thread that opens it, so a caller that has just called setns() reads that one.
 */
export function readSysctl(key: string): string | undefined {
  try {
    return readFileSync(sysctlPath(key), 'utf8').trim().replace(/\s+/g, ' ');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

/** Several sysctls at once; missing ones are left out (so callers see what this kernel has). */
export function readSysctls(keys: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of keys) {
    const v = readSysctl(k);
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/** net.ipv4.ip_local_port_range ("32768 60999"). */
export function readPortRange(): PortRange {
  const text = readSysctl('ip_local_port_range');
  const m = text ? /^(\d+) (\d+)$/.exec(text) : null;
  if (!m) throw new Error(`unexpected ip_local_port_range: ${text ?? '(missing)'}`);
  return { low: Number(m[1]), high: Number(m[2]) };
}

/** The ports of net.ipv4.ip_local_reserved_ports ("8080,9000-9010") as ranges. */
export function parseReservedPorts(text: string): PortRange[] {
  const out: PortRange[] = [];
  for (const part of text.split(',')) {
    const m = /^\s*(\d+)(?:-(\d+))?\s*$/.exec(part);
    if (!m) continue;
    const low = Number(m[1]);
    out.push({ low, high: m[2] ? Number(m[2]) : low });
  }
  return out;
}

export function readReservedPorts(): PortRange[] {
  return parseReservedPorts(readSysctl('ip_local_reserved_ports') ?? '');
}

/**
 * The ephemeral ports connect() may pick: ip_local_port_range minus ip_local_reserved_ports.
 * `isEphemeral` is a bitmap lookup so the census can test 100,000 ports cheaply.
 */
export interface EphemeralPorts {
  range: PortRange;
  reserved: PortRange[];
  /** Ports of the range connect() can use (range size minus reserved ports inside it). */
  usable: number;
  isEphemeral(port: number): boolean;
  /** The same as a 65536-entry table (1 = ephemeral), for hot loops. */
  bitmap: Uint8Array;
}

export function ephemeralPorts(
  range: PortRange = readPortRange(),
  reserved: PortRange[] = readReservedPorts(),
): EphemeralPorts {
  // fill() rather than loops: a census is a short-lived process whose loops run interpreted.
  const bitmap = new Uint8Array(65536);
  bitmap.fill(1, range.low, range.high + 1);
  let usable = range.high - range.low + 1;
  for (const r of reserved) {
    const low = Math.max(r.low, range.low);
    const high = Math.min(r.high, range.high);
    if (low > high) continue;
    // Reserved ranges may overlap each other: count only ports still marked.
    for (let p = low; p <= high; p++) usable -= bitmap[p]!;
    bitmap.fill(0, low, high + 1);
  }
  return { range, reserved, usable, bitmap, isEphemeral: (port) => bitmap[port] === 1 };
}
