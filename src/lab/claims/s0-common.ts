/** What the S0 claims share: their seed, and small rules over SeedMeasurement. */
import type { SeedMeasurement } from '../harness.js';

export const SEED0 = '000_27c8c704027fe916.txt';

/** "failed after 100 connections (connect EADDRNOTAVAIL)" or "no failure in 300". */
export function outcome(m: Pick<SeedMeasurement, 'failedAfter' | 'firstError' | 'attempted'>): string {
  return m.failedAfter === null
    ? `no failure in ${m.attempted} connections`
    : `failed after ${m.failedAfter} connections (${m.firstError ?? 'unknown error'})`;
}

/** The client ran out of ports: it failed with EADDRNOTAVAIL within 10% of the port count. */
export function exhaustedAtPortCount(
  m: Pick<SeedMeasurement, 'failedAfter' | 'firstError' | 'ports'>,
): boolean {
  return (
    m.failedAfter !== null &&
    (m.firstError ?? '').includes('EADDRNOTAVAIL') &&
    Math.abs(m.failedAfter - m.ports) <= Math.max(2, m.ports * 0.1)
  );
}

/** A sysctl's outcome as runSeedClient records it in `settings`. */
export function settingOf(m: Pick<SeedMeasurement, 'settings'>, key: string): string | undefined {
  const v = m.settings[key];
  return v === undefined ? undefined : String(v);
}
