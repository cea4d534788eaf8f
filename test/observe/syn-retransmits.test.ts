/**
 * The SYN-retransmit classifier (observe/syn-retransmits.ts), pure: event sequences as the tracer
 * read them on 6.18 behind a NAT (server-first churn through 10 NAT ports: a reused NAT port
 * meets the server's TIME_WAIT, the client's SYN is answered with an ACK, resent at once, then
 * after its 1 s timer).
 */
import { describe, expect, it } from 'vitest';
import {
  SynRetransmitTracker,
  synRetransmitFilter,
  synRetransmitFromFields,
  type ConnectTransition,
} from '../../src/observe/syn-retransmits.js';

const C = { address: '198.51.100.1', port: 42132 };
const S = { address: '203.0.113.2', port: 18431 };

function leave(timeMs: number, newState: string, inOldStateMs?: number, local = C): ConnectTransition {
  return {
    timeMs,
    pid: 77,
    task: 'node',
    family: 4,
    local,
    remote: S,
    oldState: 'SYN-SENT',
    newState,
    inOldStateMs,
    source: 'tracepoint',
  };
}

const rtx = (timeMs: number, err = 0, local = C) => ({ timeMs, family: 4 as const, local, remote: S, err });

describe('synRetransmitFromFields', () => {
  it('reads the 6.18 text of tcp:tcp_retransmit_skb, and refuses other states', () => {
    const text =
      'skbaddr=00000000a1b2c3d4 skaddr=00000000deadbeef family=AF_INET sport=42132 dport=18431 ' +
      'saddr=198.51.100.1 daddr=203.0.113.2 saddrv6=::ffff:198.51.100.1 daddrv6=::ffff:203.0.113.2 ' +
      'state=TCP_SYN_SENT err=0';
    const f = Object.fromEntries(text.split(' ').map((w) => w.split('=') as [string, string]));
    expect(synRetransmitFromFields(f, 1000)).toEqual({
      timeMs: 1000,
      family: 4,
      local: C,
      remote: S,
      err: 0,
    });
    expect(synRetransmitFromFields({ ...f, err: '-16' }, 1)?.err).toBe(-16);
    expect(synRetransmitFromFields({ ...f, state: 'TCP_ESTABLISHED' }, 1)).toBeUndefined();
    // Kernels before 6.12 print no err: every traced retransmit was sent.
    const { err: _err, ...old } = f;
    expect(synRetransmitFromFields(old, 1)?.err).toBe(0);
  });

  it('filters SYN-SENT in the kernel, with the trace port', () => {
    expect(synRetransmitFilter(undefined)).toBe('state == 2');
    expect(synRetransmitFilter(8080)).toBe('state == 2 && (sport == 8080 || dport == 8080)');
  });
});

describe('SynRetransmitTracker', () => {
  it('a stall: retransmits at once and after the timer, then established after 2 s', () => {
    const t = new SynRetransmitTracker();
    expect(t.retransmit(rtx(10_010))).toEqual([]);
    expect(t.retransmit(rtx(11_027))).toEqual([]);
    expect(t.retransmit(rtx(12_051))).toEqual([]);
    const [c] = t.transition(leave(12_052, 'ESTAB', 2052));
    expect(c).toMatchObject({
      kind: 'slow-connect',
      outcome: 'established',
      stalled: true,
      startMs: 10_000,
      durationMs: 2052,
      synRetransmits: 3,
      retransmitsAtMs: [10, 1027, 2051],
      pid: 77,
    });
    expect(t.summary(true)).toMatchObject({
      synRetransmits: 3,
      stalled: 1,
      longestStallMs: 2052,
      connects: { established: 1, closed: 0, unfinished: 0 },
    });
  });

  it('a retransmit at once without a stall is reported, not counted as a stall', () => {
    const t = new SynRetransmitTracker();
    t.retransmit(rtx(5_011));
    const [c] = t.transition(leave(5_012, 'ESTAB', 12));
    expect(c).toMatchObject({ stalled: false, synRetransmits: 1, outcome: 'established' });
    expect(t.summary(true).stalled).toBe(0);
  });

  it('an ordinary connect is not reported; a slow one without retransmits is', () => {
    const t = new SynRetransmitTracker({ stallMs: 500 });
    expect(t.transition(leave(100, 'ESTAB', 0.3))).toEqual([]);
    expect(t.transition(leave(900, 'ESTAB', 600, { ...C, port: 1 }))).toMatchObject([
      { stalled: true, synRetransmits: 0 },
    ]);
  });

  it('a timeout: closed in SYN-SENT with its duration; unsent attempts counted apart', () => {
    const t = new SynRetransmitTracker();
    t.retransmit(rtx(1_000));
    t.retransmit(rtx(1_500, -16));
    t.retransmit(rtx(3_000));
    const [c] = t.transition(leave(3_500, 'CLOSE', 3_500));
    expect(c).toMatchObject({
      outcome: 'closed',
      stalled: false,
      durationMs: 3_500,
      synRetransmits: 2,
      failedRetransmits: 1,
    });
    expect(t.summary(true)).toMatchObject({
      synRetransmits: 2,
      failedRetransmits: 1,
      longestClosedMs: 3_500,
      connects: { closed: 1 },
    });
  });

  it('a retransmit read after its connect ended still belongs to it; a later connect on the 4-tuple is apart', () => {
    const t = new SynRetransmitTracker();
    t.retransmit(rtx(1_000));
    const [c] = t.transition(leave(2_100, 'ESTAB', 2_100));
    t.retransmit(rtx(2_000)); // per-CPU buffers: read late, but earlier than the end
    expect(c!.synRetransmits).toBe(2);
    expect(c!.retransmitsAtMs).toEqual([1_000, 2_000]);
    t.retransmit(rtx(9_000)); // a new connect reusing the 4-tuple
    expect(t.end(9_500)).toMatchObject([{ outcome: 'unfinished', synRetransmits: 1, local: C }]);
    expect(t.summary(true)).toMatchObject({ synRetransmits: 3, connects: { established: 1, unfinished: 1 } });
  });

  it('without a seen start (connect before the trace) the times count from the first retransmit', () => {
    const t = new SynRetransmitTracker();
    t.retransmit(rtx(1_000));
    t.retransmit(rtx(3_000));
    const [c] = t.transition(leave(3_001, 'ESTAB', undefined));
    expect(c).toMatchObject({ durationMs: undefined, startMs: undefined, retransmitsAtMs: [0, 2_000] });
  });

  it('sock_diag transitions and port-0 failures are not connects that sent a SYN', () => {
    const t = new SynRetransmitTracker();
    expect(t.transition({ ...leave(1, 'CLOSE', 0, { ...C, port: 0 }) })).toEqual([]);
    expect(t.transition({ ...leave(1, 'ESTAB', 900), source: 'sock_diag' })).toEqual([]);
  });
});
