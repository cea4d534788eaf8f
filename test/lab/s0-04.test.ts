/**
 * S0-04's verdict rule (SO_LINGER {1,0}), fed measurements for each outcome and the edge between
 * them.
 */
import { describe, expect, it } from 'vitest';
import type { SeedMeasurement } from '../../src/lab/harness.js';
import { claim as s0_04 } from '../../src/lab/claims/s0-04.js';
import { exhausted, survived } from '../helpers/seed-measurement.js';

describe('S0-04 SO_LINGER {1,0}', () => {
  it('confirmed when no failure and no TIME_WAIT; the costs are in the conditions', () => {
    const j = s0_04.judge({
      lingerOff: exhausted(),
      lingerZero: survived({ clientRstsSent: 300, serverEstabResets: 300 }),
      lingerZeroAfterShutdown: survived({ clientTimeWait: 1 }),
    });
    expect(j.verdict).toBe('confirmed');
    expect(j.conditions!.join(' ')).toContain('sent 300 RSTs');
  });
  it('refuted when the client still fails or TIME_WAIT remains', () => {
    const after = survived();
    const j = (lingerZero: SeedMeasurement): string =>
      s0_04.judge({ lingerOff: exhausted(), lingerZero, lingerZeroAfterShutdown: after }).verdict;
    expect(j(exhausted())).toBe('refuted');
    expect(j(survived({ serverTimeWait: 5 }))).toBe('refuted');
    expect(j(survived({ clientTimeWait: 1 }))).toBe('refuted');
  });
});
