import { describe, expect, it } from 'vitest';
import { claim as s2_03, type LifeOutcome } from '../../src/lab/claims/s2-03.js';

const clean = (life: LifeOutcome['life']): LifeOutcome => ({ life, statesAfter: [], rebind: 'ok' });
const est: LifeOutcome = {
  life: 'established, closed first',
  statesAfter: ['TIME_WAIT'],
  rebind: 'EADDRINUSE',
};

describe('S2-03 judge', () => {
  it('confirms when only the established connection leaves TIME_WAIT', () => {
    const lives = [clean('bound only'), clean('bound and listened'), clean('connect refused'), est];
    expect(s2_03.judge({ lives }).verdict).toBe('confirmed');
  });
  it('refutes when a bound-only socket leaves TIME_WAIT', () => {
    const lives = [{ ...clean('bound only'), statesAfter: ['TIME_WAIT'], rebind: 'EADDRINUSE' }, est];
    expect(s2_03.judge({ lives }).verdict).toBe('refuted');
  });
  it('refutes when even the established connection leaves none', () => {
    expect(s2_03.judge({ lives: [clean('bound only'), { ...est, statesAfter: [] }] }).verdict).toBe(
      'refuted',
    );
  });
});
