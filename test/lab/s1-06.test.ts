import { describe, expect, it } from 'vitest';
import { claim as s1_06, type ReconnectOutcome } from '../../src/lab/claims/s1-06.js';

const run = (tcpTwReuse: number, tcpTimestamps: number, connectSameRemote: string): ReconnectOutcome => ({
  tcpTwReuse,
  tcpTimestamps,
  stateBefore: ['TIME_WAIT'],
  rebind: 'ok',
  connectSameRemote,
  connectOtherRemote: 'ok',
  timeWaitAgeMs: 1500,
});

describe('S1-06 judge', () => {
  it('confirms when the same remote is refused in every setting', () => {
    const j = s1_06.judge({ runs: [run(0, 1, 'EADDRNOTAVAIL'), run(0, 0, 'EADDRNOTAVAIL')] });
    expect(j.verdict).toBe('confirmed');
  });
  it('depends when timestamps let the same 4-tuple through', () => {
    const j = s1_06.judge({
      runs: [run(0, 1, 'ok'), run(1, 1, 'ok'), run(0, 0, 'EADDRNOTAVAIL')],
    });
    expect(j.verdict).toBe('depends');
    expect(j.conditions![2]).toContain('claim holds');
    expect(j.conditions![0]).toContain('claim fails');
  });
  it('refutes when the same remote is always reachable', () => {
    expect(s1_06.judge({ runs: [run(0, 1, 'ok'), run(0, 0, 'ok')] }).verdict).toBe('refuted');
  });
  it('is not-tested when the port was not in TIME_WAIT', () => {
    expect(s1_06.judge({ runs: [{ ...run(0, 1, 'ok'), stateBefore: [] }] }).verdict).toBe('not-tested');
  });
});
