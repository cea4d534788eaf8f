import { describe, expect, it } from 'vitest';
import { claim as s1_02 } from '../../src/lab/claims/s1-02.js';

const traced = ['ESTAB→FIN-WAIT-1', 'FIN-WAIT-1→CLOSING', 'CLOSING→CLOSE'];
const m = (clientFinal: string[], serverFinal: string[]) => ({
  clientTraced: traced,
  serverTraced: traced,
  traceError: null as string | null,
  clientStatesSeen: ['FIN_WAIT1', ...clientFinal],
  serverStatesSeen: ['FIN_WAIT1', ...serverFinal],
  clientFinal,
  serverFinal,
  linkDownMs: 400,
});

describe('S1-02 judge', () => {
  it('confirms when both sides end in TIME_WAIT', () => {
    const j = s1_02.judge(m(['TIME_WAIT'], ['TIME_WAIT']));
    expect(j.verdict).toBe('confirmed');
    expect(j.explanation).toContain('FIN_WAIT1→TIME_WAIT');
    expect(j.explanation).toContain('Both passed through CLOSING');
  });
  it('does not claim crossed FINs without a trace', () => {
    const j = s1_02.judge({
      ...m(['TIME_WAIT'], ['TIME_WAIT']),
      clientTraced: [],
      serverTraced: [],
      traceError: 'no tracefs',
    });
    expect(j.verdict).toBe('confirmed');
    expect(j.explanation).not.toContain('CLOSING');
  });
  it('refutes when one side does not', () => {
    expect(s1_02.judge(m(['TIME_WAIT'], [])).verdict).toBe('refuted');
    expect(s1_02.judge(m(['FIN_WAIT1'], ['TIME_WAIT'])).verdict).toBe('refuted');
  });
});
