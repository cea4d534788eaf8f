import { describe, expect, it } from 'vitest';
import { claim } from '../../src/lab/claims/n-01.js';
import { failedAtPool, natRun, stalledRun } from '../helpers/nat-runs.js';

describe('N-01 judge (N NAT ports, at most N connections per TIME_WAIT period)', () => {
  it('refutes when both close orders carried more than N without a failure (stalls are not failures)', () => {
    const j = claim.judge({ clientFirst: natRun(), serverFirst: stalledRun() });
    expect(j.verdict).toBe('refuted');
    expect(j.explanation).toMatch(/more than 100 connections through 100 NAT ports/);
    expect(j.conditions).toHaveLength(2);
  });
  it('confirms when both stopped at the pool', () => {
    const j = claim.judge({
      clientFirst: failedAtPool(),
      serverFirst: failedAtPool({ close: 'server-first' }),
    });
    expect(j.verdict).toBe('confirmed');
  });
  it('depends when only one close order got past the pool', () => {
    const j = claim.judge({ clientFirst: natRun(), serverFirst: failedAtPool({ close: 'server-first' }) });
    expect(j.verdict).toBe('depends');
    expect(j.explanation).toContain('closing at the client');
  });
  it('a run longer than a TIME_WAIT period proves nothing about one period', () => {
    const slow = natRun({ durationMs: 70_000 });
    expect(claim.judge({ clientFirst: slow, serverFirst: stalledRun() }).verdict).not.toBe('refuted');
  });
});
