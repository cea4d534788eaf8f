import { describe, expect, it } from 'vitest';
import { claim } from '../../src/lab/claims/n-03.js';
import { natRun, stalledRun } from '../helpers/nat-runs.js';

const timedOut = stalledRun({
  conntrackTimeWaitS: '2',
  firstError: 'connect ETIMEDOUT',
  failedAtIteration: 123,
  succeeded: 122,
  attempted: 123,
  beforeFailure: 122,
});

describe('N-03 judge (server closes first behind a NAT: new connections can stall)', () => {
  it('confirms stalls and timeouts that come with SYNs sent again, which the client-first control lacks', () => {
    const j = claim.judge({
      serverFirst: stalledRun(),
      serverFirstShortConntrack: timedOut,
      clientFirst: natRun(),
    });
    expect(j.verdict).toBe('confirmed');
    expect(j.explanation).toMatch(/13 connection\(s\) stalled or timed out/);
    expect(j.explanation).toMatch(/stopped with connect ETIMEDOUT at connection 123/);
    expect(j.conditions).toHaveLength(3);
  });
  it('refutes when no server-first connection stalled or timed out', () => {
    const clean = natRun({ close: 'server-first' });
    expect(
      claim.judge({ serverFirst: clean, serverFirstShortConntrack: clean, clientFirst: natRun() }).verdict,
    ).toBe('refuted');
  });
  it('is not-tested when the control retransmitted as much (a starved machine, not the NAT)', () => {
    const j = claim.judge({
      serverFirst: stalledRun(),
      serverFirstShortConntrack: stalledRun(),
      clientFirst: natRun({ clientSynRetrans: 60, stalls: 5 }),
    });
    expect(j.verdict).toBe('not-tested');
  });
});
