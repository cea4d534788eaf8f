import { describe, expect, it } from 'vitest';
import { claim, collisions } from '../../src/lab/claims/n-02.js';
import { natRun, stalledRun } from '../helpers/nat-runs.js';

describe('N-02 judge (--random-fully prevents port collisions)', () => {
  it('refutes when the fully-random run still collided', () => {
    const j = claim.judge({
      withoutFullyRandom: stalledRun(),
      withFullyRandom: stalledRun({ fullyRandom: true, clientSynRetrans: 43 }),
    });
    expect(j.verdict).toBe('refuted');
    expect(j.explanation).toMatch(/still collided 43 time/);
  });
  it('confirms when only the run without it collided', () => {
    const j = claim.judge({
      withoutFullyRandom: stalledRun({ insertFailed: 3 }),
      withFullyRandom: natRun({ close: 'server-first', fullyRandom: true }),
    });
    expect(j.verdict).toBe('confirmed');
  });
  it('is not-tested when neither collided', () => {
    expect(claim.judge({ withoutFullyRandom: natRun(), withFullyRandom: natRun() }).verdict).toBe(
      'not-tested',
    );
  });
  it('counts SYNs sent again, refused insertions and a failed connect', () => {
    expect(
      collisions(natRun({ clientSynRetrans: 2, insertFailed: 1, firstError: 'connect ETIMEDOUT' })),
    ).toBe(4);
  });
});
