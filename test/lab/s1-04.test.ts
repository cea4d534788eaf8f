import { describe, expect, it } from 'vitest';
import { claim as s1_04, type DeathOutcome } from '../../src/lab/claims/s1-04.js';

const tied: DeathOutcome = {
  unreadBytes: 0,
  serverRead: 'EOF',
  clientStatesAfter: ['TIME_WAIT'],
  rebindWithoutReuse: 'EADDRINUSE',
};
const reset: DeathOutcome = {
  unreadBytes: 20_000,
  serverRead: 'ECONNRESET',
  clientStatesAfter: [],
  rebindWithoutReuse: 'ok',
};

describe('S1-04 judge', () => {
  it('depends when unread data turns the death into a reset', () => {
    const j = s1_04.judge({ nothingUnread: tied, unreadData: reset });
    expect(j.verdict).toBe('depends');
    expect(j.conditions).toEqual([
      'receive buffer empty: TIME_WAIT',
      'unread data in the receive buffer: no TIME_WAIT (server read ECONNRESET)',
    ]);
  });
  it('confirms when the port is in TIME_WAIT both times', () => {
    expect(s1_04.judge({ nothingUnread: tied, unreadData: { ...tied, unreadBytes: 10 } }).verdict).toBe(
      'confirmed',
    );
  });
  it('refutes when the port is never in TIME_WAIT', () => {
    expect(s1_04.judge({ nothingUnread: { ...reset, unreadBytes: 0 }, unreadData: reset }).verdict).toBe(
      'refuted',
    );
  });
});
