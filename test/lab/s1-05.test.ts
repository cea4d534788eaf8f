import { describe, expect, it } from 'vitest';
import { claim as s1_05, judgeRebind } from '../../src/lab/claims/s1-05.js';

const r = (bindWithout: string, bindWith: string, timeWaitOnPort = 1) => ({
  timeWaitOnPort,
  bindWithout,
  bindWith,
});

describe('S1-05 judge', () => {
  it('depends when only an old socket that had SO_REUSEADDR can be bound over', () => {
    const j = s1_05.judge({
      originWithout: r('EADDRINUSE', 'EADDRINUSE'),
      originWith: r('EADDRINUSE', 'ok'),
    });
    expect(j.verdict).toBe('depends');
    expect(j.conditions).toHaveLength(2);
  });
  it('confirms when SO_REUSEADDR always lets the bind through and is needed', () => {
    expect(
      s1_05.judge({ originWithout: r('EADDRINUSE', 'ok'), originWith: r('EADDRINUSE', 'ok') }).verdict,
    ).toBe('confirmed');
  });
  it('refutes when it never helps, or when it is not needed', () => {
    expect(judgeRebind(r('EADDRINUSE', 'EADDRINUSE'), r('EADDRINUSE', 'EADDRINUSE')).verdict).toBe('refuted');
    expect(judgeRebind(r('ok', 'ok'), r('ok', 'ok')).verdict).toBe('refuted');
  });
  it('is not-tested without TIME_WAIT on the port', () => {
    expect(judgeRebind(r('ok', 'ok', 0), r('ok', 'ok')).verdict).toBe('not-tested');
  });
});
