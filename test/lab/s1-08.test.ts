import { describe, expect, it } from 'vitest';
import { claim as s1_08, type S1_08Measured } from '../../src/lab/claims/s1-08.js';

const base: S1_08Measured = {
  connections: 20,
  succeeded: 20,
  clientTimeWait: 20,
  serverTimeWait: 0,
  serverClosedHow: { 'client-first': 20, 'idle-timeout': 1 },
  vanishedServerStates: ['FIN_WAIT1'],
  idleTimeoutMs: 800,
};

describe('S1-08 judge', () => {
  it('confirms when the server holds no TIME_WAIT and the idle timeout closed the vanished client', () => {
    expect(s1_08.judge(base).verdict).toBe('confirmed');
  });
  it('refutes when the server holds TIME_WAIT', () => {
    expect(s1_08.judge({ ...base, serverTimeWait: 20, clientTimeWait: 0 }).verdict).toBe('refuted');
  });
  it('refutes when the vanished client is never closed', () => {
    expect(
      s1_08.judge({ ...base, serverClosedHow: { 'client-first': 20 }, vanishedServerStates: ['ESTABLISHED'] })
        .verdict,
    ).toBe('refuted');
  });
  it('is not-tested when no connection succeeded', () => {
    expect(s1_08.judge({ ...base, succeeded: 0, clientTimeWait: 0 }).verdict).toBe('not-tested');
  });
});
