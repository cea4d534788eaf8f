/**
 * S0-06's verdict rule (keep the connection open), fed measurements for each outcome and the edge
 * between them.
 */
import { describe, expect, it } from 'vitest';
import { claim as s0_06, type S0_06Measured } from '../../src/lab/claims/s0-06.js';

describe('S0-06 keep the connection open', () => {
  const ok: S0_06Measured = {
    ports: 100,
    messagesAttempted: 300,
    messagesSent: 300,
    messagesReceived: 300,
    firstError: null,
    messagesPerSecond: 10000,
    localPortsUsed: 1,
    clientTimeWaitAfterClose: 1,
  };
  it('confirmed when one connection carries everything', () =>
    expect(s0_06.judge(ok).verdict).toBe('confirmed'));
  it('refuted when messages are lost or it fails', () => {
    expect(s0_06.judge({ ...ok, messagesReceived: 250 }).verdict).toBe('refuted');
    expect(s0_06.judge({ ...ok, messagesSent: 10, firstError: 'send EPIPE' }).verdict).toBe('refuted');
  });
});
