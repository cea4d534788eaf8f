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
import { s1_01 } from './claims/s1-01.js';
import { s1_02 } from './claims/s1-02.js';
import { s1_03 } from './claims/s1-03.js';
import { s1_04 } from './claims/s1-04.js';
import { s1_05 } from './claims/s1-05.js';
import { s1_06 } from './claims/s1-06.js';
import { s1_07 } from './claims/s1-07.js';
import { s1_08 } from './claims/s1-08.js';
import { s1_09 } from './claims/s1-09.js';
import { s1_10 } from './claims/s1-10.js';
import { s1_11 } from './claims/s1-11.js';
import { s1_12 } from './claims/s1-12.js';
import { s1_13 } from './claims/s1-13.js';
import { s1_14 } from './claims/s1-14.js';
import { s1_15 } from './claims/s1-15.js';

// --- S2-* (seed 002) ---
import { s2_01 } from './claims/s2-01.js';
import { s2_02 } from './claims/s2-02.js';
import { s2_03 } from './claims/s2-03.js';
import { s2_04 } from './claims/s2-04.js';
import { s2_05 } from './claims/s2-05.js';
import { s2_06 } from './claims/s2-06.js';

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
  s1_01,
  s1_02,
  s1_03,
  s1_04,
  s1_05,
  s1_06,
  s1_07,
  s1_08,
  s1_09,
  s1_10,
  s1_11,
  s1_12,
  s1_13,
  s1_14,
  s1_15,
  // S2-*
  s2_01,
  s2_02,
  s2_03,
  s2_04,
  s2_05,
  s2_06,
];

/** Every id, in report order. */
export function claimIds(): string[] {
  return CLAIMS.map((c) => c.id);
}
