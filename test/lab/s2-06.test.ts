import { describe, expect, it } from 'vitest';
import { claim as s2_06, type S2_06Measured } from '../../src/lab/claims/s2-06.js';

const base: S2_06Measured = {
  oldConnBefore: ['TIME_WAIT'],
  listen: 'ok',
  oldConnAfterListen: ['TIME_WAIT'],
  newConnection: 'ok',
  oldConnAfterNewConnection: ['TIME_WAIT'],
  timerBeforeMs: 59_832,
  timerAfterMs: 59_696,
};

describe('S2-06 judge', () => {
  it('confirms when the TIME_WAIT socket outlives the re-bind', () => {
    expect(s2_06.judge(base).verdict).toBe('confirmed');
  });
  it('refutes when the re-bind removes it', () => {
    expect(s2_06.judge({ ...base, oldConnAfterListen: [], oldConnAfterNewConnection: [] }).verdict).toBe(
      'refuted',
    );
  });
  it('is not-tested when there was no TIME_WAIT or the re-bind failed', () => {
    expect(s2_06.judge({ ...base, oldConnBefore: [] }).verdict).toBe('not-tested');
    expect(s2_06.judge({ ...base, listen: 'EADDRINUSE at bind' }).verdict).toBe('not-tested');
  });
});
