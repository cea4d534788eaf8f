import { describe, expect, it } from 'vitest';
import { claim as s2_05, type TimestampRebind } from '../../src/lab/claims/s2-05.js';

const run = (timestamps: number, bindWith: string): TimestampRebind => ({
  timestamps,
  timeWaitOnPort: 1,
  bindWithout: 'EADDRINUSE',
  bindWith,
});

describe('S2-05 judge', () => {
  it('refutes when SO_REUSEADDR works with timestamps off', () => {
    expect(s2_05.judge({ runs: [run(0, 'ok'), run(1, 'ok')] }).verdict).toBe('refuted');
  });
  it('confirms when it works only with timestamps on', () => {
    expect(s2_05.judge({ runs: [run(0, 'EADDRINUSE'), run(1, 'ok')] }).verdict).toBe('confirmed');
  });
  it('is not-tested without TIME_WAIT or without both settings', () => {
    expect(s2_05.judge({ runs: [{ ...run(0, 'ok'), timeWaitOnPort: 0 }, run(1, 'ok')] }).verdict).toBe(
      'not-tested',
    );
    expect(s2_05.judge({ runs: [run(1, 'ok')] }).verdict).toBe('not-tested');
  });
});
