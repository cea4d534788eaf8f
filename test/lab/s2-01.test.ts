import { describe, expect, it } from 'vitest';
import { claim as s2_01, type ReconnectAtOnce } from '../../src/lab/claims/s2-01.js';

const run = (reuseAddr: boolean, reconnect = 'ok', secondPort: number | null = 40_002): ReconnectAtOnce => ({
  reuseAddr,
  firstPort: 40_001,
  firstPortState: ['TIME_WAIT'],
  reconnect,
  secondPort,
  afterMs: 2,
});

describe('S2-01 judge', () => {
  it('confirms an immediate reconnect from a new port either way', () => {
    expect(s2_01.judge({ runs: [run(false), run(true)] }).verdict).toBe('confirmed');
  });
  it('refutes when a reconnect fails or reuses the TIME_WAIT port', () => {
    expect(s2_01.judge({ runs: [run(false, 'EADDRNOTAVAIL', null), run(true)] }).verdict).toBe('refuted');
    expect(s2_01.judge({ runs: [run(false, 'ok', 40_001)] }).verdict).toBe('refuted');
  });
  it('is not-tested when the first connection left no TIME_WAIT', () => {
    expect(s2_01.judge({ runs: [{ ...run(false), firstPortState: [] }] }).verdict).toBe('not-tested');
  });
});
