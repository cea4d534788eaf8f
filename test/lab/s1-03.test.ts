import { describe, expect, it } from 'vitest';
import { claim as s1_03, type S1_03Measured } from '../../src/lab/claims/s1-03.js';

const base: S1_03Measured = {
  idleListenerRowsAfterClose: [],
  pendingConnections: 3,
  pendingClientStatesBefore: ['ESTABLISHED', 'ESTABLISHED', 'ESTABLISHED'],
  clientReads: ['ECONNRESET', 'ECONNRESET', 'ECONNRESET'],
  serverStatesAfter: [],
  clientStatesAfter: [],
};

describe('S1-03 judge', () => {
  it('refutes when pending connections are reset and no TIME_WAIT is left', () => {
    const j = s1_03.judge(base);
    expect(j.verdict).toBe('refuted');
    expect(j.explanation).toContain('resets pending connections');
  });
  it('confirms when closing with pending connections leaves TIME_WAIT', () => {
    const j = s1_03.judge({ ...base, clientReads: ['EOF', 'EOF', 'EOF'], serverStatesAfter: ['TIME_WAIT'] });
    expect(j.verdict).toBe('confirmed');
  });
  it('refutes when an idle listener leaves something behind', () => {
    expect(
      s1_03.judge({ ...base, idleListenerRowsAfterClose: ['TIME_WAIT'], serverStatesAfter: ['TIME_WAIT'] })
        .verdict,
    ).toBe('refuted');
  });
  it('is not-tested when nothing was pending', () => {
    expect(s1_03.judge({ ...base, pendingConnections: 0 }).verdict).toBe('not-tested');
  });
});
