import { describe, expect, it } from 'vitest';
import { claim as s1_11 } from '../../src/lab/claims/s1-11.js';

describe('S1-11 judge', () => {
  it('refutes when the peer gets a reset', () => {
    const j = s1_11.judge({ rstSegments: 1, clientRead: 'ECONNRESET', clientWrite: 'EPIPE' });
    expect(j.verdict).toBe('refuted');
    expect(j.explanation).toContain('ECONNRESET');
  });
  it('confirms when nothing reaches the peer', () => {
    expect(s1_11.judge({ rstSegments: 0, clientRead: 'nothing', clientWrite: 'ok' }).verdict).toBe(
      'confirmed',
    );
  });
});
