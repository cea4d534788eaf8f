/**
 * S0-10's verdict rule (SO_REUSEADDR solves it), fed measurements for each outcome and the edge
 * between them.
 */
import { describe, expect, it } from 'vitest';
import { claim as s0_10 } from '../../src/lab/claims/s0-10.js';
import { exhausted, survived } from '../helpers/seed-measurement.js';

describe('S0-10 SO_REUSEADDR solves it', () => {
  it('refuted when every variant still fails', () => {
    const j = s0_10.judge({
      variants: [
        { ...exhausted(), variant: 'a' },
        { ...exhausted({ firstError: 'bind EADDRINUSE' }), variant: 'b' },
      ],
    });
    expect(j.verdict).toBe('refuted');
  });
  it('confirmed when a variant runs through', () => {
    expect(
      s0_10.judge({
        variants: [
          { ...exhausted(), variant: 'a' },
          { ...survived(), variant: 'b' },
        ],
      }).verdict,
    ).toBe('confirmed');
  });
});
