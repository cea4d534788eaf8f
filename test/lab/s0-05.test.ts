/** S0-05's verdict rule (UDP), fed measurements for each outcome and the edge between them. */
import { describe, expect, it } from 'vitest';
import { claim as s0_05, type S0_05Measured } from '../../src/lab/claims/s0-05.js';

describe('S0-05 UDP', () => {
  const ok: S0_05Measured = {
    ports: 100,
    messagesAttempted: 300,
    messagesSent: 300,
    firstError: null,
    messagesPerSecond: 5000,
    localPortsUsed: 90,
    datagramsReceived: 298,
    datagramsLost: 2,
    clientTimeWait: 0,
  };
  it('confirmed when every send works past the port count', () => {
    const j = s0_05.judge(ok);
    expect(j.verdict).toBe('confirmed');
    expect(j.explanation).toContain('2 datagrams lost');
  });
  it('refuted when a send fails', () => {
    expect(s0_05.judge({ ...ok, messagesSent: 100, firstError: 'sendto EADDRNOTAVAIL' }).verdict).toBe(
      'refuted',
    );
  });
});
