import { describe, expect, it } from 'vitest';
import { claim, type N06Measured } from '../../src/lab/claims/n-06.js';

const m = (over: Partial<N06Measured> = {}): N06Measured => ({
  tcpTwRecycle: 'not-present',
  clientAddresses: ['198.51.100.1', '198.51.100.11'],
  attempted: 80,
  succeeded: 80,
  firstError: null,
  stalls: 0,
  synsSentAgain: 0,
  serverPawsRejected: 0,
  ...over,
});

describe('N-06 judge (tcp_tw_recycle breaks clients behind a NAT)', () => {
  it('is not-applicable where the sysctl does not exist, and says since when and why', () => {
    const j = claim.judge(m());
    expect(j.verdict).toBe('not-applicable');
    expect(j.explanation).toMatch(/removed in Linux 4\.12 \(commit 4396e46187ca/);
    expect(j.explanation).toMatch(/80 of 80 connections/);
  });
  it('is not-applicable when the kernel rejected the write', () => {
    expect(claim.judge(m({ tcpTwRecycle: 'rejected' })).verdict).toBe('not-applicable');
  });
  it('confirms on a kernel that has it when the mixed-timestamp clients lose SYNs', () => {
    const j = claim.judge(
      m({ tcpTwRecycle: '1', succeeded: 41, attempted: 42, firstError: 'connect ETIMEDOUT' }),
    );
    expect(j.verdict).toBe('confirmed');
  });
  it('refutes on a kernel that has it when nothing was dropped', () => {
    expect(claim.judge(m({ tcpTwRecycle: '1' })).verdict).toBe('refuted');
  });
});
