/**
 * S0-07's verdict rule (TIME_WAIT is 60 s), fed measurements for each outcome and the edge between
 * them.
 */
import { describe, expect, it } from 'vitest';
import { claim as s0_07, type S0_07Run } from '../../src/lab/claims/s0-07.js';

describe('S0-07 TIME_WAIT is 60 s', () => {
  const run = (over: Partial<S0_07Run>): S0_07Run => ({
    tcpFinTimeout: '60 (default)',
    timerAtFirstLookMs: 59_990,
    firstLookAfterMs: 2,
    observedLifetimeMs: 61_600,
    resolutionMs: 100,
    localPort: 40000,
    ...over,
  });
  it('confirmed when the timer starts at 60 s and the socket leaves within the timer slack, in every run', () => {
    const j = s0_07.judge({
      claimedSeconds: 60,
      runs: [run({}), run({ tcpFinTimeout: '5', observedLifetimeMs: 60_100 })],
    });
    expect(j.verdict).toBe('confirmed');
  });
  it('confirmed when a loaded machine looked late: the timer seen is short by at most that delay', () => {
    const late = run({ firstLookAfterMs: 2_500, timerAtFirstLookMs: 57_600, observedLifetimeMs: 58_000 });
    expect(s0_07.judge({ claimedSeconds: 60, runs: [run({}), late] }).verdict).toBe('confirmed');
    // Short by more than the delay explains: not a 60 s timer.
    const short = run({ firstLookAfterMs: 500, timerAtFirstLookMs: 57_600, observedLifetimeMs: 58_000 });
    expect(s0_07.judge({ claimedSeconds: 60, runs: [run({}), short] }).verdict).toBe('refuted');
  });
  it('refuted when tcp_fin_timeout shortens it, or the timer starts elsewhere', () => {
    expect(
      s0_07.judge({
        claimedSeconds: 60,
        runs: [run({}), run({ tcpFinTimeout: '5', timerAtFirstLookMs: 5_000, observedLifetimeMs: 5_100 })],
      }).verdict,
    ).toBe('refuted');
    expect(
      s0_07.judge({ claimedSeconds: 60, runs: [run({}), run({ observedLifetimeMs: 120_000 })] }).verdict,
    ).toBe('refuted');
    expect(
      s0_07.judge({ claimedSeconds: 60, runs: [run({}), run({ observedLifetimeMs: null })] }).verdict,
    ).toBe('refuted');
  });
});
