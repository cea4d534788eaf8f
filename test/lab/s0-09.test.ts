/**
 * S0-09's verdict rule (close at the client first), fed measurements for each outcome and the edge
 * between them.
 */
import { describe, expect, it } from 'vitest';
import { claim as s0_09 } from '../../src/lab/claims/s0-09.js';
import { survived } from '../helpers/seed-measurement.js';

describe('S0-09 close at the client first', () => {
  it('refuted when TIME_WAIT lands on whoever closes first', () => {
    const j = s0_09.judge({
      connections: 50,
      clientClosesFirst: survived({ succeeded: 50, clientTimeWait: 50 }),
      serverClosesFirst: survived({ succeeded: 50, localPortsUsed: 36, serverTimeWait: 36 }),
    });
    expect(j.verdict).toBe('refuted');
    expect(j.explanation).toContain('Whoever closes first');
  });
  it('confirmed when closing at the client first leaves no TIME_WAIT anywhere', () => {
    const j = s0_09.judge({
      connections: 50,
      clientClosesFirst: survived({ succeeded: 50 }),
      serverClosesFirst: survived({ succeeded: 50, serverTimeWait: 50 }),
    });
    expect(j.verdict).toBe('confirmed');
  });
});
