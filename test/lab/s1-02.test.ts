import { describe, expect, it } from 'vitest';
import { s1_02 } from '../../src/lab/claims/s1-02.js';

const m = (clientFinal: string[], serverFinal: string[]) => ({
  clientStatesSeen: ['FIN_WAIT1', ...clientFinal],
  serverStatesSeen: ['FIN_WAIT1', ...serverFinal],
  clientFinal,
  serverFinal,
  linkDownMs: 400,
  sysctls: [],
});

describe('S1-02 judge', () => {
  it('confirms when both sides end in TIME_WAIT', () => {
    const j = s1_02.judge(m(['TIME_WAIT'], ['TIME_WAIT']));
    expect(j.verdict).toBe('confirmed');
    expect(j.explanation).toContain('FIN_WAIT1→TIME_WAIT');
  });
  it('refutes when one side does not', () => {
    expect(s1_02.judge(m(['TIME_WAIT'], [])).verdict).toBe('refuted');
    expect(s1_02.judge(m(['FIN_WAIT1'], ['TIME_WAIT'])).verdict).toBe('refuted');
  });
});
