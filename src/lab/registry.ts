/**
 * Every claim of the ledger, in report order: one line per claim (its file exports `claim`; see
 * CONTRIBUTING.md). The runner schedules them by estimateMs; this list decides the order they are
 * printed in and which ids `--only` accepts. Keep it sorted by id.
 */
import type { Claim } from './types.js';

// Measurements differ per claim; the runner only hands them from run() to judge().
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyClaim = Claim<any>;

const modules = await Promise.all([
  import('./claims/s0-01.js'),
  import('./claims/s0-02.js'),
  import('./claims/s0-03.js'),
  import('./claims/s0-04.js'),
  import('./claims/s0-05.js'),
  import('./claims/s0-06.js'),
  import('./claims/s0-07.js'),
  import('./claims/s0-08.js'),
  import('./claims/s0-09.js'),
  import('./claims/s0-10.js'),
  import('./claims/s0-11.js'),
  import('./claims/s1-01.js'),
  import('./claims/s1-02.js'),
  import('./claims/s1-03.js'),
  import('./claims/s1-04.js'),
  import('./claims/s1-05.js'),
  import('./claims/s1-06.js'),
  import('./claims/s1-07.js'),
  import('./claims/s1-08.js'),
  import('./claims/s1-09.js'),
  import('./claims/s1-10.js'),
  import('./claims/s1-11.js'),
  import('./claims/s1-12.js'),
  import('./claims/s1-13.js'),
  import('./claims/s1-14.js'),
  import('./claims/s1-15.js'),
  import('./claims/s2-01.js'),
  import('./claims/s2-02.js'),
  import('./claims/s2-03.js'),
  import('./claims/s2-04.js'),
  import('./claims/s2-05.js'),
  import('./claims/s2-06.js'),
  import('./claims/n-01.js'),
  import('./claims/n-02.js'),
  import('./claims/n-03.js'),
  import('./claims/n-04.js'),
  import('./claims/n-05.js'),
  import('./claims/n-06.js'),
]);

export const CLAIMS: readonly AnyClaim[] = modules.map((m) => m.claim);

/** The NAT family's id prefix (claims from outside the seeds: issue 14). */
export const NAT_PREFIX = 'N-';

/** A claim of the NAT family (run with `--only nat`, not in the default lab). */
export const isNatClaim = (id: string): boolean => id.startsWith(NAT_PREFIX);

/** Every id, in report order. */
export function claimIds(): string[] {
  return CLAIMS.map((c) => c.id);
}
