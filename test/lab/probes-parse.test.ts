/** The probes' readers of the kernel's text tables, on lines the kernel printed in a real run. */
import { describe, expect, it } from 'vitest';
import { parseProcNetTcp } from '../../src/lab/probes/tcp-table.js';
import { parseCounterPairs } from '../../src/lab/probes/counters.js';

describe('parseProcNetTcp', () => {
  it('reads a TIME_WAIT entry: addresses, ports, and the time left (USER_HZ ticks)', () => {
    const text = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 016433C6:9C40 026433C6:303B 06 00000000:00000000 03:00001748 00000000     0        0 0 3 0000000055530717',
      '   1: 00000000:303B 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0',
    ].join('\n');
    expect(parseProcNetTcp(text)).toEqual([
      {
        state: 'TIME_WAIT',
        localAddress: '198.51.100.1',
        localPort: 40000,
        remoteAddress: '198.51.100.2',
        remotePort: 12347,
        timerLeftMs: 59_600,
      },
      {
        state: 'LISTEN',
        localAddress: '0.0.0.0',
        localPort: 12347,
        remoteAddress: '0.0.0.0',
        remotePort: 0,
        timerLeftMs: null,
      },
    ]);
  });
});

describe('parseCounterPairs', () => {
  it('pairs the header line with the value line of one prefix', () => {
    const snmp = [
      'Ip: Forwarding DefaultTTL',
      'Ip: 1 64',
      'Tcp: RtoAlgorithm ActiveOpens EstabResets OutRsts',
      'Tcp: 1 101 3 300',
    ].join('\n');
    expect(parseCounterPairs(snmp, 'Tcp')).toEqual({
      RtoAlgorithm: 1,
      ActiveOpens: 101,
      EstabResets: 3,
      OutRsts: 300,
    });
    expect(parseCounterPairs(snmp, 'Udp')).toEqual({});
  });
});
