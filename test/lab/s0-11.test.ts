/**
 * S0-11's verdict rule (several listeners with SO_REUSEADDR), fed measurements for each outcome
 * and the edge between them.
 */
import { describe, expect, it } from 'vitest';
import { claim as s0_11 } from '../../src/lab/claims/s0-11.js';
import type { TwoListenersResult } from '../../src/lab/probes/listeners.js';

describe('S0-11 several listeners with SO_REUSEADDR', () => {
  const base = { connections: 40, acceptedByFirst: null, acceptedBySecond: null, firstListen: 'ok' };
  const addrRefused: TwoListenersResult = {
    ...base,
    options: { reuseAddr: true, reusePort: false },
    secondListen: 'bind EADDRINUSE',
  };
  const portOk: TwoListenersResult = {
    ...base,
    options: { reuseAddr: false, reusePort: true },
    secondListen: 'ok',
    acceptedByFirst: 19,
    acceptedBySecond: 21,
  };
  it('refuted when the second SO_REUSEADDR listener is refused, pointing at SO_REUSEPORT', () => {
    const j = s0_11.judge({ reuseAddr: addrRefused, reusePort: portOk });
    expect(j.verdict).toBe('refuted');
    expect(j.explanation).toContain('SO_REUSEPORT');
  });
  it('confirmed when the second SO_REUSEADDR listener listens', () => {
    expect(
      s0_11.judge({ reuseAddr: { ...addrRefused, secondListen: 'ok' }, reusePort: portOk }).verdict,
    ).toBe('confirmed');
  });
});
