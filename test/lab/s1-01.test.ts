import { describe, expect, it } from 'vitest';
import { claim as s1_01 } from '../../src/lab/claims/s1-01.js';

const m = (c1: string[], s1: string[], c2: string[], s2: string[]) => ({
  clientClosesFirst: { clientStates: c1, serverStates: s1 },
  serverClosesFirst: { clientStates: c2, serverStates: s2 },
});

describe('S1-01 judge', () => {
  it('confirms when only the first closer holds TIME_WAIT both ways round', () => {
    expect(s1_01.judge(m(['TIME_WAIT'], [], [], ['TIME_WAIT'])).verdict).toBe('confirmed');
  });
  it('refutes when the passive side holds TIME_WAIT too', () => {
    const j = s1_01.judge(m(['TIME_WAIT'], ['TIME_WAIT'], [], ['TIME_WAIT']));
    expect(j.verdict).toBe('refuted');
    expect(j.explanation).toContain('server TIME_WAIT');
  });
  it('refutes when the first closer holds none', () => {
    expect(s1_01.judge(m([], [], [], ['TIME_WAIT'])).verdict).toBe('refuted');
  });
});
