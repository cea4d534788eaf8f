/**
 * S0-03's verdict rule (SO_REUSEADDR on the client makes no difference), fed measurements for each
 * outcome and the edge between them.
 */
import { describe, expect, it } from 'vitest';
import { claim as s0_03 } from '../../src/lab/claims/s0-03.js';
import { exhausted, survived } from '../helpers/seed-measurement.js';

describe('S0-03 SO_REUSEADDR on the client makes no difference', () => {
  it('confirmed when both runs fail alike', () => {
    expect(
      s0_03.judge({ withoutReuseAddr: exhausted(), withReuseAddr: exhausted({ failedAfter: 99 }) }).verdict,
    ).toBe('confirmed');
  });
  it('refuted when the option changes the outcome', () => {
    expect(s0_03.judge({ withoutReuseAddr: exhausted(), withReuseAddr: survived() }).verdict).toBe('refuted');
    expect(
      s0_03.judge({ withoutReuseAddr: exhausted(), withReuseAddr: exhausted({ failedAfter: 50 }) }).verdict,
    ).toBe('refuted');
    expect(
      s0_03.judge({
        withoutReuseAddr: exhausted(),
        withReuseAddr: exhausted({ firstError: 'bind EADDRINUSE' }),
      }).verdict,
    ).toBe('refuted');
  });
});
