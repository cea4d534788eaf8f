/**
 * Every claim of the ledger, in report order. The runner schedules them by estimateMs; this list
 * only decides the order they are printed in and which ids `--only` accepts.
 *
 * Pattern (one claim per file, one import line and one list entry per claim):
 *   src/lab/claims/s1-05.ts   exports   `export const s1_05: Claim<S1_05Measured> = { id: 'S1-05', ... }`
 *   here:                     import { s1_05 } from './claims/s1-05.js';   and add `s1_05,` to its block below.
 * S0-* lines belong to the lab framework owner, S1-* and S2-* lines to the second lab engineer;
 * keep each block sorted by id.
 */
import type { Claim } from './types.js';

// --- S0-* (seed 000) ---

// --- S1-* (seed 001) ---

// --- S2-* (seed 002) ---

// Measurements differ per claim; the runner only hands them from run() to judge().
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyClaim = Claim<any>;

export const CLAIMS: readonly AnyClaim[] = [
  // S0-*
  // S1-*
  // S2-*
];

/** Every id, in report order. */
export function claimIds(): string[] {
  return CLAIMS.map((c) => c.id);
}
