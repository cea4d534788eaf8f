import { describe, expect, it } from 'vitest';
import { claim, type N05Step } from '../../src/lab/claims/n-05.js';

const step = (over: Partial<N05Step>): N05Step => ({
  clientPort: 21001,
  holderClientPort: null,
  holderState: null,
  holderLeftS: null,
  serverTimeWaitBefore: 0,
  ok: true,
  error: null,
  ms: 9,
  natPort: 40000,
  synsSentAgain: 0,
  ...over,
});
const inTw = (over: Partial<N05Step>): N05Step =>
  step({ clientPort: 21002, holderClientPort: 21001, holderState: 'TIME_WAIT', holderLeftS: 119, ...over });
const dropped = { ok: false, error: 'connect ETIMEDOUT', ms: 2504, natPort: null, synsSentAgain: 1 };
const seq = (close: 'client-first' | 'server-first', steps: N05Step[]) => ({
  close,
  natPool: '40000-40000',
  steps,
});

describe('N-05 judge (a NAT port whose conntrack entry is in TIME_WAIT stays reserved)', () => {
  it("refutes when a new client port was given the TIME_WAIT entry's port, and reports the dropped ones and the server side", () => {
    const j = claim.judge({
      clientFirst: seq('client-first', [step({}), inTw(dropped), inTw({ clientPort: 21003 })]),
      serverFirst: seq('server-first', [
        step({}),
        inTw({ serverTimeWaitBefore: 1, ms: 1030, synsSentAgain: 1 }),
      ]),
    });
    expect(j.verdict).toBe('refuted');
    expect(j.explanation).toMatch(/1 of 2 connections from a new client port were given port 40000/);
    expect(j.explanation).toMatch(/The other 1 found the port still taken/);
    expect(j.explanation).toMatch(
      /1 of 1 took the port over, 1 of them only after sending the SYN again \(1 SYN\(s\) again, 1030 ms\)/,
    );
  });
  it('confirms when every connection started during TIME_WAIT failed', () => {
    const j = claim.judge({
      clientFirst: seq('client-first', [step({}), inTw(dropped), inTw({ ...dropped, clientPort: 21003 })]),
      serverFirst: seq('server-first', [step({})]),
    });
    expect(j.verdict).toBe('confirmed');
  });
  it('is not-tested when no connection started while the entry was in TIME_WAIT', () => {
    const j = claim.judge({
      clientFirst: seq('client-first', [step({}), step({ clientPort: 21002, holderState: 'FIN_WAIT' })]),
      serverFirst: seq('server-first', [step({})]),
    });
    expect(j.verdict).toBe('not-tested');
  });
});
