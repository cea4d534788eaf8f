/** The TCP table probe's view of a sock_diag record. */
import { describe, expect, it } from 'vitest';
import { entryOf } from '../../src/lab/probes/tcp-table.js';
import type { TcpSocketRecord } from '../../src/observe/sockdiag.js';

const record = (over: Partial<TcpSocketRecord>): TcpSocketRecord => ({
  family: 4,
  stateNumber: 6,
  state: 'TIME-WAIT',
  local: { address: '198.51.100.1', port: 40000 },
  remote: { address: '198.51.100.2', port: 12347 },
  expiresMs: 59_600,
  timer: 3,
  rqueue: 0,
  wqueue: 0,
  uid: 0,
  inode: 0,
  ...over,
});

describe('tcp-table entryOf', () => {
  it('a TIME_WAIT socket: kernel state name, endpoints, and the time left on its timer', () => {
    expect(entryOf(record({}))).toEqual({
      state: 'TIME_WAIT',
      localAddress: '198.51.100.1',
      localPort: 40000,
      remoteAddress: '198.51.100.2',
      remotePort: 12347,
      timerLeftMs: 59_600,
    });
  });
  it('other states carry no TIME_WAIT timer (a retransmit timer is not one)', () => {
    const e = entryOf(record({ stateNumber: 1, state: 'ESTAB', timer: 1, expiresMs: 200 }));
    expect(e.state).toBe('ESTABLISHED');
    expect(e.timerLeftMs).toBeNull();
  });
});
