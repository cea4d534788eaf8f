import { describe, expect, it } from 'vitest';
import { claim as s1_13, type AssassinationOutcome } from '../../src/lab/claims/s1-13.js';

const run = (rfc1337: number, afterInWindowRst: string[]): AssassinationOutcome => ({
  rfc1337,
  expectedSeq: 12345,
  before: ['TIME_WAIT'],
  afterOutOfWindowRst: ['TIME_WAIT'],
  afterInWindowRst,
});

describe('S1-13 judge', () => {
  it('confirms when the RST kills TIME_WAIT with rfc1337=0 and not with 1', () => {
    expect(s1_13.judge({ runs: [run(0, []), run(1, ['TIME_WAIT'])] }).verdict).toBe('confirmed');
  });
  it('depends when it kills even with rfc1337=1', () => {
    expect(s1_13.judge({ runs: [run(0, []), run(1, [])] }).verdict).toBe('depends');
  });
  it('refutes when the in-window RST does nothing', () => {
    expect(s1_13.judge({ runs: [run(0, ['TIME_WAIT']), run(1, ['TIME_WAIT'])] }).verdict).toBe('refuted');
  });
  it('is not-tested when the out-of-window control already removed it', () => {
    expect(s1_13.judge({ runs: [{ ...run(0, []), afterOutOfWindowRst: [] }] }).verdict).toBe('not-tested');
  });
});
