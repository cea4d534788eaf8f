import { describe, expect, it } from 'vitest';
import { claim as s1_15, type SettingOutcome, type S1_15Measured } from '../../src/lab/claims/s1-15.js';

const fails = (setting: string, status: SettingOutcome['status'] = 'applied'): SettingOutcome => ({
  setting,
  status,
  connectionsTried: 151,
  connectionsOk: 150,
  failure: { errno: 'EADDRNOTAVAIL', atIteration: 151 },
  timeWaitLeft: 150,
  timeWaitTimerMs: 60_000,
});
const measured = (runs: SettingOutcome[]): S1_15Measured => ({
  portRange: '40000-40149',
  attemptsBound: 300,
  ratePerSecond: 100,
  runs: [fails('baseline', 'none'), ...runs],
});

describe('S1-15 judge', () => {
  it('depends when only tcp_tw_reuse helps and tcp_tw_recycle is absent', () => {
    const j = s1_15.judge(
      measured([
        { ...fails('tcp_tw_reuse=1'), connectionsTried: 300, connectionsOk: 300, failure: null },
        fails('tcp_tw_recycle=1', 'not-present'),
        fails('tcp_fin_timeout=30'),
      ]),
    );
    expect(j.verdict).toBe('depends');
    expect(j.conditions).toEqual([
      expect.stringMatching(/^tcp_tw_reuse=1: no failure in 300.*helps$/),
      'tcp_tw_recycle=1: not-present on this kernel, no effect possible',
      expect.stringMatching(/^tcp_fin_timeout=30: EADDRNOTAVAIL at connection 151.*no effect/),
    ]);
  });
  it('refutes when no setting changes anything', () => {
    expect(s1_15.judge(measured([fails('tcp_syncookies=1'), fails('tcp_keepalive_time=1800')])).verdict).toBe(
      'refuted',
    );
  });
  it('confirms when every setting helps', () => {
    const j = s1_15.judge(measured([{ ...fails('tcp_fin_timeout=30'), timeWaitTimerMs: 30_000 }]));
    expect(j.verdict).toBe('confirmed');
  });
  it('does not count a run that failed for another reason (a lagging server) as "no effect"', () => {
    const j = s1_15.judge(
      measured([
        { ...fails('tcp_tw_reuse=1'), failure: null },
        { ...fails('tcp_syncookies=1'), failure: { errno: 'ECONNREFUSED', atIteration: 57 } },
      ]),
    );
    expect(j.verdict).toBe('depends');
    expect(j.conditions![1]).toContain('inconclusive');
  });
  it('is not-tested when nothing helped but some run was disturbed', () => {
    const j = s1_15.judge(
      measured([
        fails('tcp_syncookies=1'),
        { ...fails('tcp_tw_reuse=1'), failure: { errno: 'ECONNREFUSED', atIteration: 57 } },
      ]),
    );
    expect(j.verdict).toBe('not-tested');
  });
  it('is not-tested when the baseline client does not fail', () => {
    const m = measured([]);
    m.runs[0] = { ...m.runs[0]!, failure: null };
    expect(s1_15.judge(m).verdict).toBe('not-tested');
  });
});
