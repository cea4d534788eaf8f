/**
 * Parsers for the values users type: ports, ranges, host:port, counts. Each one throws a
 * UsageError whose message names the value and what is accepted, so the CLI (and library callers)
 * can report it in one line.
 */
import { isIP } from 'node:net';
import { UsageError } from './errors.js';

/**
 * A value as it may be shown in a one-line message: quoted, with newlines, control characters and
 * quotes escaped as JSON does, and nothing cut.
 */
export function show(text: string): string {
  return `'${JSON.stringify(text).slice(1, -1).replace(/'/g, "\\'")}'`;
}

/**
 * A JSON field (the dashboard's form) as the text a command-line flag would carry, so both go
 * through the same parser: a string as is, a finite number in plain decimal notation. Anything
 * else (an array, an object, a boolean, null) is refused.
 */
export function fieldText(value: unknown, what: string): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) {
    return value.toLocaleString('en-US', { useGrouping: false, maximumFractionDigits: 20 });
  }
  throw new UsageError(
    `${what}: ${show(JSON.stringify(value) ?? String(value))} is not a number or a string`,
  );
}

/** Plain decimal notation: no exponent, no hex, no Infinity (what a person types). */
const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)$/;

/** An integer within [min, max]; `what` names the value in the error ("--count"). */
export function parseIntInRange(text: string, what: string, min: number, max: number): number {
  const trimmed = text.trim();
  if (!/^-?\d+$/.test(trimmed)) {
    throw new UsageError(`${what}: ${show(text)} is not a whole number (accepted: ${min} to ${max})`);
  }
  const n = Number(trimmed);
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`${what}: ${trimmed} is out of range (accepted: ${min} to ${max})`);
  }
  return n;
}

/** A finite number within [min, max] (decimals allowed), e.g. a rate or a duration in seconds. */
export function parseNumberInRange(text: string, what: string, min: number, max: number): number {
  const trimmed = text.trim();
  const n = DECIMAL.test(trimmed) ? Number(trimmed) : NaN;
  if (!Number.isFinite(n)) {
    throw new UsageError(`${what}: ${show(text)} is not a decimal number (accepted: ${min} to ${max})`);
  }
  if (n < min || n > max) {
    throw new UsageError(`${what}: ${trimmed} is out of range (accepted: ${min} to ${max})`);
  }
  return n;
}

/** A TCP/UDP port, 1-65535 (0 is accepted only where `allowZero` says "any port"). */
export function parsePort(text: string, what: string, allowZero = false): number {
  return parseIntInRange(text, what, allowZero ? 0 : 1, 65535);
}

export interface PortRange {
  low: number;
  high: number;
}

/** "A-B" with 1 <= A <= B <= 65535. */
export function parsePortRange(text: string, what: string): PortRange {
  const m = /^\s*(\d+)\s*-\s*(\d+)\s*$/.exec(text);
  if (!m)
    throw new UsageError(`${what}: ${show(text)} is not a port range (accepted: A-B, 1 <= A <= B <= 65535)`);
  const low = parsePort(m[1]!, what);
  const high = parsePort(m[2]!, what);
  if (low > high)
    throw new UsageError(`${what}: ${show(text)} has A > B (accepted: A-B, 1 <= A <= B <= 65535)`);
  return { low, high };
}

export interface HostPort {
  host: string;
  port: number;
  family: 4 | 6;
}

/**
 * "HOST:PORT" where HOST is an IPv4 address, "[IPv6]" or "localhost" (taken as 127.0.0.1).
 * Names other than localhost are refused: twlab only talks to loopback and its own sandbox hosts,
 * and never resolves names.
 */
export function parseHostPort(text: string, what: string, opts: { allowZeroPort?: boolean } = {}): HostPort {
  const m = /^\s*(?:\[([^\]]+)\]|([^:[\]]+)):(\d+)\s*$/.exec(text);
  if (!m)
    throw new UsageError(`${what}: ${show(text)} is not HOST:PORT (accepted: 127.0.0.1:8080, [::1]:8080)`);
  const host = parseHost(m[1] ?? m[2]!, what);
  const port = parsePort(m[3]!, what, opts.allowZeroPort ?? false);
  return { host, port, family: isIP(host) === 6 ? 6 : 4 };
}

/** An IP address literal, or "localhost" (127.0.0.1). */
export function parseHost(text: string, what: string): string {
  const host = text.trim() === 'localhost' ? '127.0.0.1' : text.trim();
  if (isIP(host) === 0) {
    throw new UsageError(`${what}: ${show(text)} is not an IP address (accepted: IPv4, IPv6 or localhost)`);
  }
  return host;
}

/** One of a fixed set of words. */
export function parseChoice<T extends string>(text: string, what: string, choices: readonly T[]): T {
  if ((choices as readonly string[]).includes(text)) return text as T;
  throw new UsageError(`${what}: ${show(text)} is not accepted (accepted: ${choices.join(', ')})`);
}
