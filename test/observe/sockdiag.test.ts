/**
 * The table readers' pieces on their own (the /proc line parser, state names, the exhaustion
 * arithmetic, the bind rule, the sysctl and counter parsers), and the IPv6 side of both readers
 * against ss in a sandbox.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandbox } from '../../src/sandbox/index.js';
import type { Sandbox } from '../../src/sandbox/index.js';
import { distPath, twlabArgv } from '../../src/common/paths.js';
import { parseLine } from '../../src/observe/procfs.js';
import { decodeRecord } from '../../src/observe/sockdiag.js';
import { DIAG } from '../../src/observe/sockdiag-layout.js';
import {
  ALL_STATES_MASK,
  stateMask,
  tcpStateName,
  tcpStateNumber,
  kernelStateName,
} from '../../src/observe/sockdiag-states.js';
import { TimeLeft, secondsToExhaustion, type CensusResult } from '../../src/observe/census.js';
import { addressesOverlap, predictBind } from '../../src/observe/doctor-port.js';
import { ephemeralPorts, parseReservedPorts } from '../../src/observe/sysctl.js';
import { parseNetstatPairs, parseSockstatLine } from '../../src/observe/counters.js';
import fc from 'fast-check';
import { describeNs } from '../helpers/sandbox.js';

function parsed(line: string, family: 4 | 6, mask = ALL_STATES_MASK): ReturnType<typeof decodeRecord>[] {
  const out: ReturnType<typeof decodeRecord>[] = [];
  parseLine(line, family, mask, Buffer.alloc(DIAG.size), (b, o) => out.push(decodeRecord(b, o)));
  return out;
}

describe('/proc/net/tcp lines into inet_diag_msg records', () => {
  it('decodes a TIME_WAIT line (host-order hex address, ticks of 10 ms)', () => {
    const line =
      '  12: 0100007F:9C40 0200A8C0:1F90 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000';
    const [r] = parsed(line, 4);
    expect(r).toMatchObject({
      family: 4,
      state: 'TIME-WAIT',
      local: { address: '127.0.0.1', port: 40000 },
      remote: { address: '192.168.0.2', port: 8080 },
      expiresMs: 60_000,
      timer: 3,
    });
  });
  it('decodes an IPv6 listener with queues, uid and inode', () => {
    const line =
      '   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000002:00000005 00:00000000 00000000  1000        0 4242 1 0000000000000000 100 0 0 10 0';
    const [r] = parsed(line, 6);
    expect(r).toMatchObject({
      family: 6,
      state: 'LISTEN',
      local: { address: '::1', port: 8080 },
      remote: { address: '::', port: 0 },
      wqueue: 2,
      rqueue: 5,
      uid: 1000,
      inode: 4242,
    });
  });
  it('skips the header, blank lines, and states outside the mask', () => {
    expect(
      parsed(
        '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
        4,
      ),
    ).toEqual([]);
    expect(parsed('', 4)).toEqual([]);
    const est =
      '   1: 0100007F:9C40 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 77 1 0';
    expect(parsed(est, 4, stateMask([6]))).toEqual([]);
    expect(parsed(est, 4, stateMask([1]))).toHaveLength(1);
  });
});

describe('state names', () => {
  it('uses ss spellings and accepts ss filter words', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12].map(tcpStateName)).toEqual([
      'ESTAB',
      'SYN-SENT',
      'SYN-RECV',
      'FIN-WAIT-1',
      'FIN-WAIT-2',
      'TIME-WAIT',
      'UNCONN',
      'CLOSE-WAIT',
      'LAST-ACK',
      'LISTEN',
      'CLOSING',
      'NEW-SYN-RECV',
    ]);
    expect(tcpStateName(99)).toBe('UNKNOWN');
    expect(tcpStateNumber('time-wait')).toBe(6);
    expect(tcpStateNumber('TIME_WAIT')).toBe(6);
    expect(tcpStateNumber('listening')).toBe(10);
    expect(tcpStateNumber('estab')).toBe(1);
    expect(tcpStateNumber('nope')).toBeUndefined();
    expect(stateMask([6, 10])).toBe((1 << 6) | (1 << 10));
    expect(stateMask()).toBe(ALL_STATES_MASK);
  });
  it('also spells states as the kernel and the seeds do', () => {
    expect([1, 4, 6, 7, 10, 12].map(kernelStateName)).toEqual([
      'ESTABLISHED',
      'FIN_WAIT1',
      'TIME_WAIT',
      'CLOSE',
      'LISTEN',
      'NEW_SYN_RECV',
    ]);
    expect(kernelStateName(99)).toBe('STATE_99');
  });
});

describe('secondsToExhaustion', () => {
  it('is 0 when the ports are already gone and null without a rate', () => {
    expect(secondsToExhaustion(100, [], 5, 100)).toBe(0);
    expect(secondsToExhaustion(10, [], 0, 100)).toBeNull();
  });
  it('is (free ports) / rate when nothing expires first', () => {
    expect(secondsToExhaustion(50, [], 10, 100)).toBe(5);
  });
  it('counts ports freed by expiring TIME_WAIT sockets before the crossing', () => {
    // 90 held, 10 usable left at 2/s = 5 s, but 4 expire at 1 s: 7 s.
    expect(secondsToExhaustion(90, [1000, 1000, 1000, 1000], 2, 100)).toBe(7);
  });
  it('is null when the held count levels off below the range (steady state)', () => {
    // 1/s for 60 s is 60 ports at most, out of 100.
    expect(secondsToExhaustion(0, [], 1, 100)).toBeNull();
  });
});

describe('TimeLeft (TIME-WAIT time left without sorting)', () => {
  it('gives the k-th smallest, min and max of any values, also above 60 s', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 200_000 }), { minLength: 1, maxLength: 300 }),
        (values) => {
          const t = new TimeLeft();
          for (const v of values) t.add(v);
          const sorted = [...values].sort((a, b) => a - b);
          expect(t.count).toBe(values.length);
          expect([t.min, t.max]).toEqual([sorted[0], sorted.at(-1)]);
          for (const k of [1, Math.ceil(values.length / 2), values.length])
            expect(t.nth(k)).toBe(sorted[k - 1]);
        },
      ),
    );
  });
  it('is exact at the bucket edges, for every rank', () => {
    const values = [0, 999, 1000, 1001, 59_999, 60_000, 60_001, 1000, 0, 61_500];
    const t = new TimeLeft();
    for (const v of values) t.add(v);
    const sorted = [...values].sort((a, b) => a - b);
    expect(sorted.map((_, i) => t.nth(i + 1))).toEqual(sorted);
  });
});

describe('the bind rule (inet_csk_bind_conflict)', () => {
  const tw = {
    stateNumber: 6,
    local: { address: '127.0.0.1', port: 80 },
    remote: { address: '127.0.0.1', port: 5000 },
  };
  const lst = {
    stateNumber: 10,
    local: { address: '0.0.0.0', port: 80 },
    remote: { address: '0.0.0.0', port: 0 },
  };
  it('overlaps addresses as the kernel does', () => {
    expect(addressesOverlap('0.0.0.0', '127.0.0.1')).toBe(true);
    expect(addressesOverlap('127.0.0.1', '127.0.0.2')).toBe(false);
    expect(addressesOverlap('127.0.0.1', '::')).toBe(true);
    expect(addressesOverlap('0.0.0.0', '::1')).toBe(false);
    expect(addressesOverlap('10.0.0.1', '::ffff:10.0.0.1')).toBe(true);
  });
  it('predicts from the holders', () => {
    expect(predictBind('0.0.0.0', 80, [])).toMatchObject({
      withoutReuseAddr: { verdict: 'succeeds' },
      withReuseAddr: { verdict: 'succeeds' },
    });
    expect(predictBind('0.0.0.0', 80, [tw])).toMatchObject({
      withoutReuseAddr: { verdict: 'fails' },
      withReuseAddr: { verdict: 'depends' },
    });
    expect(predictBind('0.0.0.0', 80, [tw, lst])).toMatchObject({
      withoutReuseAddr: { verdict: 'fails' },
      withReuseAddr: { verdict: 'fails' },
    });
    expect(predictBind('127.0.0.2', 80, [tw])).toMatchObject({ withoutReuseAddr: { verdict: 'succeeds' } });
  });
});

describe('sysctl and counter parsers', () => {
  it('reads reserved ports and the usable count', () => {
    expect(parseReservedPorts('8080,9000-9002')).toEqual([
      { low: 8080, high: 8080 },
      { low: 9000, high: 9002 },
    ]);
    expect(parseReservedPorts('')).toEqual([]);
    const e = ephemeralPorts({ low: 9000, high: 9009 }, parseReservedPorts('9000-9001,9005,12000'));
    expect(e.usable).toBe(7);
    expect(e.isEphemeral(9000)).toBe(false);
    expect(e.isEphemeral(9002)).toBe(true);
    expect(e.isEphemeral(12000)).toBe(false);
  });
  it('counts usable ports with overlapping and out-of-range reserved ranges like a port-by-port walk', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 65535 }),
        fc.integer({ min: 0, max: 3000 }),
        fc.array(fc.tuple(fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 0, max: 2000 })), {
          maxLength: 6,
        }),
        (low, width, spans) => {
          const range = { low, high: Math.min(65535, low + width) };
          const reserved = spans.map(([a, w]) => ({ low: a, high: Math.min(65535, a + w) }));
          const e = ephemeralPorts(range, reserved);
          let usable = 0;
          for (let p = range.low; p <= range.high; p++) {
            const isReserved = reserved.some((r) => p >= r.low && p <= r.high);
            expect(e.isEphemeral(p)).toBe(!isReserved);
            if (!isReserved) usable++;
          }
          expect(e.usable).toBe(usable);
        },
      ),
      { numRuns: 200 },
    );
  });
  it('reads sockstat and netstat line pairs', () => {
    expect(parseSockstatLine('sockets: used 5\nTCP: inuse 2 orphan 1 tw 24 alloc 3 mem 0\n', 'TCP')).toEqual({
      inuse: 2,
      orphan: 1,
      tw: 24,
      alloc: 3,
      mem: 0,
    });
    expect(parseNetstatPairs('TcpExt: TW TWKilled\nTcpExt: 35 2\nIpExt: A\nIpExt: 1\n', 'TcpExt')).toEqual({
      TW: 35,
      TWKilled: 2,
    });
  });
});

describeNs('IPv6 sockets through both readers, against ss', () => {
  let box: Sandbox;
  beforeAll(async () => {
    box = await createSandbox({ hosts: 1, sysctls: { tcp_tw_reuse: 0 } });
  }, 60_000);
  afterAll(async () => box?.close());

  it('lists IPv6 TIME-WAIT sockets with their addresses, from netlink and /proc', async () => {
    const make = await box.client.exec([
      'python3',
      '-c',
      `import socket\nl=socket.socket(socket.AF_INET6)\nl.bind(("::1",9000))\nl.listen(64)\nfor _ in range(20):\n  c=socket.create_connection(("::1",9000))\n  s,_=l.accept()\n  c.close()\n  s.recv(1)\n  s.close()`,
    ]);
    if (make.code !== 0 && /Cannot assign|not available/.test(make.stderr)) return; // no IPv6 loopback here
    expect(make.code, make.stderr).toBe(0);
    const ss = await box.client.exec(['ss', '-tan', 'state', 'time-wait']);
    const ssRows = ss.stdout.trim().split('\n').slice(1);
    for (const source of ['netlink', 'procfs']) {
      const r = await box.client.exec(twlabArgv('census', '--json', '--source', source));
      const c = JSON.parse(r.stdout) as CensusResult;
      expect(c.byState['TIME-WAIT']).toBe(ssRows.length);
      expect(c.byState['TIME-WAIT']).toBe(20);
      expect(c.pressure.find((p) => p.remote === '[::1]:9000')).toMatchObject({
        local: '::1',
        inUse: 20,
        timeWait: 20,
      });
    }
  }, 60_000);

  it('one dump of both families (TCPDIAG_GETSOCK) lists exactly what the two per-family dumps list', async () => {
    // IPv4 and IPv6 TIME-WAIT sockets (stable for 60 s), then both kinds of dump in one process.
    const make = await box.client.exec([
      'python3',
      '-c',
      `import socket\nfor fam, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):\n  l=socket.socket(fam)\n  l.bind((host,9100))\n  l.listen(64)\n  for _ in range(10):\n    c=socket.create_connection((host,9100))\n    s,_=l.accept()\n    c.close()\n    s.recv(1)\n    s.close()\n  l.close()`,
    ]);
    if (make.code !== 0 && /Cannot assign|not available/.test(make.stderr)) return; // no IPv6 loopback here
    expect(make.code, make.stderr).toBe(0);
    const script = `import { dumpTcp } from ${JSON.stringify(distPath('observe/sockdiag.js'))};
const key = (r) => [r.family, r.state, r.local.address, r.local.port, r.remote.address, r.remote.port].join(' ');
const one = [...dumpTcp()].map(key).sort();
const two = [...dumpTcp({ family: 4 }), ...dumpTcp({ family: 6 })].map(key).sort();
console.log(JSON.stringify({ one, two }));`;
    const r = await box.client.exec(['node', '--input-type=module', '-e', script]);
    expect(r.code, r.stderr).toBe(0);
    const { one, two } = JSON.parse(r.stdout) as { one: string[]; two: string[] };
    expect(one).toEqual(two);
    const timeWait = (fam: string) =>
      one.filter((k) => k.startsWith(`${fam} TIME-WAIT `) && k.includes(' 9100')).length;
    expect([timeWait('4'), timeWait('6')]).toEqual([10, 10]);
  }, 60_000);
});
