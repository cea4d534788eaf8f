import { describe, expect, it } from 'vitest';
import { claim as s1_10, type S1_10Measured } from '../../src/lab/claims/s1-10.js';

const base: S1_10Measured = {
  clientSent: 7240,
  serverReceived: 1448,
  serverReadEnd: 'ECONNRESET',
  rstSegments: 1,
  finSegments: 0,
  clientStatesAfter: [],
};

describe('S1-10 judge', () => {
  it('confirms an RST, lost unsent data and no TIME_WAIT', () => {
    expect(s1_10.judge(base).verdict).toBe('confirmed');
  });
  it('refutes when the data all arrived (a graceful close)', () => {
    expect(
      s1_10.judge({ ...base, serverReceived: 7240, rstSegments: 0, finSegments: 1, serverReadEnd: 'EOF' })
        .verdict,
    ).toBe('refuted');
  });
  it('refutes when TIME_WAIT is left', () => {
    expect(s1_10.judge({ ...base, clientStatesAfter: ['TIME_WAIT'] }).verdict).toBe('refuted');
  });
});
