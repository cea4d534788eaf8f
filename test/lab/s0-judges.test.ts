/**
 * Each S0 verdict rule, fed measurements for both outcomes (and the edge between them). The
 * measurements are shaped like the real ones (see s0-experiments.test.ts for those).
 */
import { describe, expect, it } from 'vitest';
import type { SeedMeasurement } from '../../src/lab/harness.js';
import { claim as s0_01, type S0_01Scenario } from '../../src/lab/claims/s0-01.js';
import { claim as s0_02 } from '../../src/lab/claims/s0-02.js';
import { claim as s0_03 } from '../../src/lab/claims/s0-03.js';
import { claim as s0_04 } from '../../src/lab/claims/s0-04.js';
import { claim as s0_05, type S0_05Measured } from '../../src/lab/claims/s0-05.js';
import { claim as s0_06, type S0_06Measured } from '../../src/lab/claims/s0-06.js';
import { claim as s0_07, type S0_07Run } from '../../src/lab/claims/s0-07.js';
import { claim as s0_08 } from '../../src/lab/claims/s0-08.js';
import { claim as s0_09 } from '../../src/lab/claims/s0-09.js';
import { claim as s0_10 } from '../../src/lab/claims/s0-10.js';
import { claim as s0_11 } from '../../src/lab/claims/s0-11.js';
import type { TwoListenersResult } from '../../src/lab/probes/listeners.js';

/** The seed's client that ran out of ports at 100 of 100, its ports in TIME_WAIT. */
function exhausted(over: Partial<SeedMeasurement> = {}): SeedMeasurement {
  return {
    hosts: 2,
    portRange: '40000-40099',
    ports: 100,
    settings: {},
    attempted: 101,
    succeeded: 100,
    failedAfter: 100,
    firstError: 'connect EADDRNOTAVAIL',
    connectionsPerSecond: 1000,
    localPortsUsed: 100,
    clientTimeWait: 100,
    serverTimeWait: 0,
    serverAppResets: 0,
    clientRstsSent: 0,
    serverEstabResets: 0,
    payloadsComplete: 100,
    payloadsIncomplete: 0,
    clientResetsSeen: 0,
    ...over,
  };
}

/** A run that never failed within 300 connections. */
function survived(over: Partial<SeedMeasurement> = {}): SeedMeasurement {
  return exhausted({
    attempted: 300,
    succeeded: 300,
    failedAfter: null,
    firstError: null,
    clientTimeWait: 0,
    ...over,
  });
}

describe('S0-01 exhaustion', () => {
  const sc = (over: Partial<S0_01Scenario>): S0_01Scenario => ({
    ...exhausted(),
    where: 'loopback',
    twReuse: 0,
    ...over,
  });
  it('confirmed when every setting fails at the port count with TIME_WAIT', () => {
    const j = s0_01.judge({
      scenarios: [sc({}), sc({ twReuse: 1, retry: { afterMs: 1100, ok: true, error: null } })],
    });
    expect(j.verdict).toBe('confirmed');
    expect(j.conditions).toHaveLength(2);
    expect(j.explanation).toContain('1.1 s');
  });
  it('depends when one setting survives', () => {
    const j = s0_01.judge({ scenarios: [sc({}), { ...survived(), where: 'two hosts', twReuse: 1 }] });
    expect(j.verdict).toBe('depends');
    expect(j.conditions!.some((c) => c.startsWith('does not hold: two hosts, tcp_tw_reuse=1'))).toBe(true);
  });
  it('refuted when none fails, or fails far from the port count, or without TIME_WAIT', () => {
    expect(s0_01.judge({ scenarios: [{ ...survived(), where: 'loopback', twReuse: 0 }] }).verdict).toBe(
      'refuted',
    );
    expect(s0_01.judge({ scenarios: [sc({ failedAfter: 150, succeeded: 150 })] }).verdict).toBe('refuted');
    expect(s0_01.judge({ scenarios: [sc({ clientTimeWait: 10 })] }).verdict).toBe('refuted');
    expect(s0_01.judge({ scenarios: [sc({ firstError: 'connect ECONNREFUSED' })] }).verdict).toBe('refuted');
  });
});

describe('S0-02 default range', () => {
  const m = { claimedRange: '32768 61000', claimedPorts: 28233, thisHostRange: null };
  it('confirmed when a fresh namespace has the claimed range', () => {
    expect(
      s0_02.judge({ ...m, freshNamespaceRange: '32768 61000', freshNamespacePorts: 28233 }).verdict,
    ).toBe('confirmed');
  });
  it('refuted when it differs, naming the measured range', () => {
    const j = s0_02.judge({ ...m, freshNamespaceRange: '32768 60999', freshNamespacePorts: 28232 });
    expect(j.verdict).toBe('refuted');
    expect(j.explanation).toContain('32768 60999');
  });
});

describe('S0-03 SO_REUSEADDR on the client makes no difference', () => {
  it('confirmed when both runs fail alike', () => {
    expect(
      s0_03.judge({ withoutReuseAddr: exhausted(), withReuseAddr: exhausted({ failedAfter: 99 }) }).verdict,
    ).toBe('confirmed');
  });
  it('refuted when the option changes the outcome', () => {
    expect(s0_03.judge({ withoutReuseAddr: exhausted(), withReuseAddr: survived() }).verdict).toBe('refuted');
    expect(
      s0_03.judge({ withoutReuseAddr: exhausted(), withReuseAddr: exhausted({ failedAfter: 50 }) }).verdict,
    ).toBe('refuted');
    expect(
      s0_03.judge({
        withoutReuseAddr: exhausted(),
        withReuseAddr: exhausted({ firstError: 'bind EADDRINUSE' }),
      }).verdict,
    ).toBe('refuted');
  });
});

describe('S0-04 SO_LINGER {1,0}', () => {
  it('confirmed when no failure and no TIME_WAIT; the costs are in the conditions', () => {
    const j = s0_04.judge({
      lingerOff: exhausted(),
      lingerZero: survived({ clientRstsSent: 300, serverEstabResets: 300 }),
      lingerZeroAfterShutdown: survived({ clientTimeWait: 1 }),
    });
    expect(j.verdict).toBe('confirmed');
    expect(j.conditions!.join(' ')).toContain('sent 300 RSTs');
  });
  it('refuted when the client still fails or TIME_WAIT remains', () => {
    const after = survived();
    const j = (lingerZero: SeedMeasurement): string =>
      s0_04.judge({ lingerOff: exhausted(), lingerZero, lingerZeroAfterShutdown: after }).verdict;
    expect(j(exhausted())).toBe('refuted');
    expect(j(survived({ serverTimeWait: 5 }))).toBe('refuted');
    expect(j(survived({ clientTimeWait: 1 }))).toBe('refuted');
  });
});

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

describe('S0-08 tcp_tw_recycle', () => {
  it('not-applicable when the kernel has no such key', () => {
    expect(s0_08.judge({ tcpTwRecycle: 'not-present', run: null }).verdict).toBe('not-applicable');
  });
  it('confirmed or refuted by the run when the key exists', () => {
    expect(s0_08.judge({ tcpTwRecycle: '1', run: survived() }).verdict).toBe('confirmed');
    expect(s0_08.judge({ tcpTwRecycle: '1', run: exhausted() }).verdict).toBe('refuted');
  });
});

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

describe('S0-10 SO_REUSEADDR solves it', () => {
  it('refuted when every variant still fails', () => {
    const j = s0_10.judge({
      variants: [
        { ...exhausted(), variant: 'a' },
        { ...exhausted({ firstError: 'bind EADDRINUSE' }), variant: 'b' },
      ],
    });
    expect(j.verdict).toBe('refuted');
  });
  it('confirmed when a variant runs through', () => {
    expect(
      s0_10.judge({
        variants: [
          { ...exhausted(), variant: 'a' },
          { ...survived(), variant: 'b' },
        ],
      }).verdict,
    ).toBe('confirmed');
  });
});

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
