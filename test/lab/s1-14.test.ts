import { describe, expect, it } from 'vitest';
import { claim as s1_14, type S1_14Measured } from '../../src/lab/claims/s1-14.js';

const base: S1_14Measured = {
  timerAtEntryMs: 59_436,
  lastSeenMs: 60_380,
  lifetimeMs: 60_630,
  boundMs: 75_000,
  samples: [
    [100, 59_436],
    [5100, 54_400],
  ],
};

describe('S1-14 judge', () => {
  it('confirms a 60 s TIME_WAIT as 2 MSL with MSL 30 s', () => {
    const j = s1_14.judge(base);
    expect(j.verdict).toBe('confirmed');
    expect(j.explanation).toContain('MSL = 30 s');
  });
  it('refutes a lifetime that is no 2 MSL', () => {
    expect(s1_14.judge({ ...base, lastSeenMs: 4800, lifetimeMs: 5000 }).verdict).toBe('refuted');
    expect(s1_14.judge({ ...base, lastSeenMs: 90_000, lifetimeMs: 90_300 }).verdict).toBe('refuted');
    expect(s1_14.judge({ ...base, lifetimeMs: null }).verdict).toBe('refuted');
  });
  it('accepts a slow poll whose bracket still holds 60 s', () => {
    expect(s1_14.judge({ ...base, lastSeenMs: 59_000, lifetimeMs: 66_000 }).verdict).toBe('confirmed');
  });
  it('charts the timer samples', () => {
    expect(s1_14.series!(base)[0]!.points).toEqual(base.samples);
  });
});
