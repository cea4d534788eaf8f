import { describe, expect, it } from 'vitest';
import { claim as s1_12, type LingerClose } from '../../src/lab/claims/s1-12.js';

const stuck: LingerClose = {
  sent: 7240,
  closeMs: 2029,
  closeReturn: 0,
  closeErrno: null,
  stateAfterClose: ['FIN_WAIT1'],
  serverReceived: 7240,
  serverEof: true,
};
const control: LingerClose = {
  ...stuck,
  sent: 1000,
  closeMs: 43,
  stateAfterClose: ['FIN_WAIT2'],
  serverReceived: 1000,
};

describe('S1-12 judge', () => {
  it('refutes when close blocks but returns 0 and the data still arrives', () => {
    const j = s1_12.judge({ lingerSeconds: 2, peerNotReading: stuck, peerReading: control });
    expect(j.verdict).toBe('refuted');
    expect(j.explanation).toContain('close does block for the linger time');
    expect(j.explanation).toContain('the data was not lost');
  });
  it('confirms EWOULDBLOCK after N seconds with the data lost', () => {
    const j = s1_12.judge({
      lingerSeconds: 2,
      peerNotReading: { ...stuck, closeReturn: -1, closeErrno: 'EAGAIN', serverReceived: 1448 },
      peerReading: control,
    });
    expect(j.verdict).toBe('confirmed');
  });
});
