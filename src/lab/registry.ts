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
import { s0_01 } from './claims/s0-01.js';
import { s0_02 } from './claims/s0-02.js';
import { s0_03 } from './claims/s0-03.js';
import { s0_04 } from './claims/s0-04.js';
import { s0_05 } from './claims/s0-05.js';
import { s0_06 } from './claims/s0-06.js';
import { s0_07 } from './claims/s0-07.js';
import { s0_08 } from './claims/s0-08.js';
import { s0_09 } from './claims/s0-09.js';
import { s0_10 } from './claims/s0-10.js';
import { s0_11 } from './claims/s0-11.js';

// --- S1-* (seed 001) ---

// --- S2-* (seed 002) ---

// Measurements differ per claim; the runner only hands them from run() to judge().
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyClaim = Claim<any>;

export const CLAIMS: readonly AnyClaim[] = [
  // S0-*
  s0_01,
  s0_02,
  s0_03,
  s0_04,
  s0_05,
  s0_06,
  s0_07,
  s0_08,
  s0_09,
  s0_10,
  s0_11,
  // S1-*
  // S2-*
];

/** Every id, in report order. */
export function claimIds(): string[] {
  return CLAIMS.map((c) => c.id);
}
