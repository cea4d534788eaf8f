/**
 * The real claims of one group, run as `twlab lab` runs them, with the verdict each must reach on
 * this kernel: for the experiment tests (test/lab/*-experiments.test.ts).
 */
import { release } from 'node:os';
import { expect } from 'vitest';
import { createSandbox } from '../../src/sandbox/index.js';
import { runClaims } from '../../src/lab/runner.js';
import { CLAIMS } from '../../src/lab/registry.js';
import type { ClaimResult } from '../../src/lab/types.js';

/**
 * Run the registered claims whose ids start with one of `prefixes`, after checking they are
 * exactly (and in the order of) those `expected` names, so a new claim needs an expected verdict.
 * Each must run without error and reach its expected verdict; one that does not fails with its
 * explanation. Returns the results for the caller's own checks of the evidence.
 */
export async function runClaimsExpecting(
  prefixes: readonly string[],
  expected: Readonly<Record<string, string>>,
): Promise<ClaimResult[]> {
  const claims = CLAIMS.filter((c) => prefixes.some((p) => c.id.startsWith(p)));
  expect(claims.map((c) => c.id)).toEqual(Object.keys(expected));
  const results = await runClaims(claims, { createSandbox, kernel: release() });
  for (const r of results) {
    expect(r.error, `${r.id}: ${r.error}`).toBeUndefined();
    expect({
      id: r.id,
      verdict: r.verdict,
      // On a surprise, the measurements too: a CI log is all there is to read afterwards.
      why:
        r.verdict === expected[r.id]
          ? ''
          : `${r.explanation} ${JSON.stringify({ conditions: r.conditions, evidence: r.evidence })}`,
    }).toEqual({
      id: r.id,
      verdict: expected[r.id],
      why: '',
    });
  }
  return results;
}
