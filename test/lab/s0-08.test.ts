/**
 * S0-08's verdict rule (tcp_tw_recycle), fed measurements for each outcome and the edge between
 * them.
 */
import { describe, expect, it } from 'vitest';
import { claim as s0_08 } from '../../src/lab/claims/s0-08.js';
import { exhausted, survived } from '../helpers/seed-measurement.js';

describe('S0-08 tcp_tw_recycle', () => {
  it('not-applicable when the kernel has no such key', () => {
    expect(s0_08.judge({ tcpTwRecycle: 'not-present', run: null }).verdict).toBe('not-applicable');
  });
  it('confirmed or refuted by the run when the key exists', () => {
    expect(s0_08.judge({ tcpTwRecycle: '1', run: survived() }).verdict).toBe('confirmed');
    expect(s0_08.judge({ tcpTwRecycle: '1', run: exhausted() }).verdict).toBe('refuted');
  });
});
