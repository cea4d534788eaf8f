import { describe, expect, it } from 'vitest';
import { claim as s1_07, type InterceptOutcome } from '../../src/lab/claims/s1-07.js';

const blocked = (server: boolean, intruder: boolean): InterceptOutcome => ({
  option: 'SO_REUSEADDR',
  server,
  intruder,
  intruderBind: 'EADDRINUSE at bind',
  acceptedBy: 'not tried',
});
const viaPort: InterceptOutcome = {
  option: 'SO_REUSEPORT',
  server: true,
  intruder: true,
  intruderBind: 'ok',
  acceptedBy: 'intruder',
};

describe('S1-07 judge', () => {
  it('refutes when no SO_REUSEADDR combination binds, and names SO_REUSEPORT when it does', () => {
    const j = s1_07.judge({ combos: [blocked(false, false), blocked(true, true), viaPort] });
    expect(j.verdict).toBe('refuted');
    expect(j.explanation).toContain('SO_REUSEPORT (same user) does allow it');
  });
  it('confirms when an SO_REUSEADDR intruder takes the connection', () => {
    const j = s1_07.judge({
      combos: [{ ...blocked(true, true), intruderBind: 'ok', acceptedBy: 'intruder' }],
    });
    expect(j.verdict).toBe('confirmed');
  });
});
