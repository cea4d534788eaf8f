/**
 * S0-02's verdict rule (default range), fed measurements for each outcome and the edge between
 * them.
 */
import { describe, expect, it } from 'vitest';
import { claim as s0_02 } from '../../src/lab/claims/s0-02.js';

describe('S0-02 default range', () => {
  const m = { claimedRange: '32768 61000', claimedPorts: 28233, thisHostRange: null };
  it('confirmed when a fresh namespace has the claimed range', () => {
    expect(
      s0_02.judge({ ...m, freshNamespaceRange: '32768 61000', freshNamespacePorts: 28233 }).verdict,
    ).toBe('confirmed');
  });
  it('refuted when it differs, naming the measured range', () => {
    const j = s0_02.judge({ ...m, freshNamespaceRange: '32768 60999', freshNamespacePorts: 28232 });
    expect(j.verdict).toBe('refuted');
    expect(j.explanation).toContain('32768 60999');
  });
});
