import { describe, expect, it } from 'vitest';
import { claim } from '../../src/lab/claims/n-04.js';
import { failedAtPool, natRun } from '../helpers/nat-runs.js';

describe("N-04 judge (conntrack's TIME_WAIT timeout is what limits reuse)", () => {
  it('refutes when 2N went through at the default timeout while its entries were still in TIME_WAIT', () => {
    const j = claim.judge({
      defaultTimeout: natRun(),
      shortTimeout: natRun({ conntrackTimeWaitS: '2', conntrackTimeWaitMinLeftS: 0 }),
    });
    expect(j.verdict).toBe('refuted');
    expect(j.explanation).toMatch(/200 connections went through 100 NAT ports without a failure/);
    expect(j.explanation).toMatch(/117 s or more/);
  });
  it('confirms when the default stopped at the pool and the short timeout did not', () => {
    const j = claim.judge({
      defaultTimeout: failedAtPool(),
      shortTimeout: natRun({ conntrackTimeWaitS: '2' }),
    });
    expect(j.verdict).toBe('confirmed');
  });
  it('depends when the entries had expired already (the default run proves nothing about the timeout)', () => {
    const j = claim.judge({
      defaultTimeout: natRun({ conntrackByState: {}, conntrackTimeWaitMinLeftS: null }),
      shortTimeout: failedAtPool({ conntrackTimeWaitS: '2' }),
    });
    expect(j.verdict).toBe('depends');
  });
});
