import { describe, expect, it } from 'vitest';
import { claim as s1_09, type S1_09Measured } from '../../src/lab/claims/s1-09.js';

const base: S1_09Measured = {
  timeWaitRelatedKeys: ['tcp_max_tw_buckets', 'tcp_tw_reuse', 'tcp_tw_reuse_delay'],
  timeWaitLengthKeys: [],
  defaultFinTimeout: {
    finTimeout: '60',
    timeWaitTimerMs: 59_976,
    finWait2TimerMs: 59_988,
    finWait2LifetimeMs: null,
  },
  shortFinTimeout: {
    finTimeout: '5',
    timeWaitTimerMs: 59_992,
    finWait2TimerMs: 4992,
    finWait2LifetimeMs: 5115,
  },
};

describe('S1-09 judge', () => {
  it('refutes when no length knob exists and tcp_fin_timeout leaves TIME_WAIT alone', () => {
    const j = s1_09.judge(base);
    expect(j.verdict).toBe('refuted');
    expect(j.explanation).toContain('FIN_WAIT2 timer 60.0 s vs 5.0 s');
  });
  it('confirms when tcp_fin_timeout shortens the TIME_WAIT timer', () => {
    expect(
      s1_09.judge({ ...base, shortFinTimeout: { ...base.shortFinTimeout, timeWaitTimerMs: 5000 } }).verdict,
    ).toBe('confirmed');
  });
  it('confirms when the kernel has a TIME_WAIT length sysctl', () => {
    const j = s1_09.judge({ ...base, timeWaitLengthKeys: ['tcp_tw_timeout'] });
    expect(j.verdict).toBe('confirmed');
    expect(j.explanation).toContain('tcp_tw_timeout');
  });
  it('is not-tested without a TIME_WAIT timer', () => {
    expect(
      s1_09.judge({ ...base, defaultFinTimeout: { ...base.defaultFinTimeout, timeWaitTimerMs: null } })
        .verdict,
    ).toBe('not-tested');
  });
});
