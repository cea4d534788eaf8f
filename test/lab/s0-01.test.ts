/**
 * S0-01's verdict rule (exhaustion), fed measurements for each outcome and the edge between them.
 */
import { describe, expect, it } from 'vitest';
import { claim as s0_01, type S0_01Scenario } from '../../src/lab/claims/s0-01.js';
import { exhausted, survived } from '../helpers/seed-measurement.js';

describe('S0-01 exhaustion', () => {
  const sc = (over: Partial<S0_01Scenario>): S0_01Scenario => ({
    ...exhausted(),
    where: 'loopback',
    twReuse: 0,
    ...over,
  });
  it('confirmed when every setting fails at the port count with TIME_WAIT', () => {
    const j = s0_01.judge({
      scenarios: [sc({}), sc({ twReuse: 1, retry: { afterMs: 1100, ok: true, error: null } })],
    });
    expect(j.verdict).toBe('confirmed');
    expect(j.conditions).toHaveLength(2);
    expect(j.explanation).toContain('1.1 s');
  });
  it('depends when one setting survives', () => {
    const j = s0_01.judge({ scenarios: [sc({}), { ...survived(), where: 'two hosts', twReuse: 1 }] });
    expect(j.verdict).toBe('depends');
    expect(j.conditions!.some((c) => c.startsWith('does not hold: two hosts, tcp_tw_reuse=1'))).toBe(true);
  });
  it('refuted when none fails, or fails far from the port count, or without TIME_WAIT', () => {
    expect(s0_01.judge({ scenarios: [{ ...survived(), where: 'loopback', twReuse: 0 }] }).verdict).toBe(
      'refuted',
    );
    expect(s0_01.judge({ scenarios: [sc({ failedAfter: 150, succeeded: 150 })] }).verdict).toBe('refuted');
    expect(s0_01.judge({ scenarios: [sc({ clientTimeWait: 10 })] }).verdict).toBe('refuted');
    expect(s0_01.judge({ scenarios: [sc({ firstError: 'connect ECONNREFUSED' })] }).verdict).toBe('refuted');
  });
});
