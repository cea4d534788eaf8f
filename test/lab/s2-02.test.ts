import { describe, expect, it } from 'vitest';
import { claim as s2_02, type S2_02Measured } from '../../src/lab/claims/s2-02.js';

const base: S2_02Measured = {
  firstBind: 'EADDRINUSE',
  timerAtCloseMs: 59_512,
  bindOkAfterMs: 60_368,
  timeWaitAtSuccess: 0,
  attempts: 147,
  boundMs: 75_000,
  samples: [[0, 1]],
};

describe('S2-02 judge', () => {
  it('confirms a bind that succeeds only once TIME_WAIT is gone', () => {
    const j = s2_02.judge(base);
    expect(j.verdict).toBe('confirmed');
    expect(j.explanation).toContain('60.4 s');
  });
  it('refutes an immediate re-bind', () => {
    expect(s2_02.judge({ ...base, firstBind: 'ok', bindOkAfterMs: 5 }).verdict).toBe('refuted');
  });
  it('refutes a bind that succeeds while TIME_WAIT remains', () => {
    expect(s2_02.judge({ ...base, timeWaitAtSuccess: 1, bindOkAfterMs: 1000 }).verdict).toBe('refuted');
  });
  it('is not-tested without TIME_WAIT on the port', () => {
    expect(s2_02.judge({ ...base, timerAtCloseMs: null }).verdict).toBe('not-tested');
  });
});
