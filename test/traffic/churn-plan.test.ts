import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/common/errors.js';
import { DEFAULT_COUNT, parseBindAddress, planChurn } from '../../src/traffic/churn.js';
import { serverArgvFor } from '../../src/traffic/churn-sandbox.js';

describe('planChurn', () => {
  it('defaults to the seed client: 1000 iterations, "foo", client-first, stop on error', () => {
    const { config, settings } = planChurn({ to: 'localhost:8080' });
    expect(config.count).toBe(DEFAULT_COUNT);
    expect(config.durationMs).toBe(-1);
    expect(Buffer.from(config.payload).toString()).toBe('foo');
    expect(settings).toMatchObject({
      to: '127.0.0.1:8080',
      close: 'client-first',
      stopOnError: true,
      concurrency: 1,
      rate: null,
      linger: 'default',
      reuseAddr: 'default',
    });
  });

  it('a duration alone leaves the count unbounded', () => {
    const { config } = planChurn({ to: '127.0.0.1:1', durationS: 2 });
    expect(config.count).toBe(-1);
    expect(config.durationMs).toBe(2000);
  });

  it('frames reuse-connection messages with a 4-byte big-endian length', () => {
    const { config } = planChurn({ to: '127.0.0.1:1', reuseConnection: true, payload: 'hello' });
    const b = Buffer.from(config.payload);
    expect(b.readUInt32BE(0)).toBe(5);
    expect(b.subarray(4).toString()).toBe('hello');
    expect(config.mode).toBe('reuse');
  });

  it('bind-no-port binds the wildcard of the target family unless given an address', () => {
    expect(planChurn({ to: '127.0.0.1:1', bindNoPort: true }).settings.bind).toBe('0.0.0.0:0');
    expect(planChurn({ to: '[::1]:1', bindNoPort: true }).settings.bind).toBe('[::]:0');
    expect(planChurn({ to: '127.0.0.1:1', bindNoPort: true, bind: '127.0.0.2' }).settings.bind).toBe(
      '127.0.0.2:0',
    );
  });

  it('takes several destinations and bind addresses, used in turn', () => {
    const { config, settings } = planChurn({
      to: ['127.0.0.1:80', '127.0.0.2:81'],
      bind: ['127.0.0.3', '127.0.0.4:0'],
    });
    expect(config.targets).toHaveLength(2);
    expect(config.binds).toHaveLength(2);
    expect(settings.to).toBe('127.0.0.1:80,127.0.0.2:81');
    expect(settings.bind).toBe('127.0.0.3:0,127.0.0.4:0');
    expect(() => planChurn({ to: [] })).toThrow(UsageError);
    expect(() => planChurn({ to: ['127.0.0.1:80', '[::1]:80'] })).toThrow(/same address family/);
    expect(() =>
      planChurn({ to: '127.0.0.1:80', bind: ['127.0.0.3', '127.0.0.4:5'], bindNoPort: true }),
    ).toThrow(/--bind '127.0.0.4:5' has a port/);
  });

  it('shuts down before close as the seed does, except with an abortive linger unless asked', () => {
    const shut = (o: object): boolean => planChurn({ to: '127.0.0.1:1', ...o }).config.shutdown;
    expect(shut({})).toBe(true);
    expect(shut({ linger: 5 })).toBe(true);
    expect(shut({ linger: 0 })).toBe(false);
    expect(shut({ close: 'rst' })).toBe(false);
    expect(shut({ linger: 0, shutdown: true })).toBe(true);
    expect(shut({ shutdown: false })).toBe(false);
    expect(shut({ close: 'server-first' })).toBe(false);
  });

  it('rst forces an abortive linger; local port range is packed high<<16|low', () => {
    expect(planChurn({ to: '127.0.0.1:1', close: 'rst' }).settings.linger).toBe(0);
    expect(planChurn({ to: '127.0.0.1:1', localPortRange: '40000-40009' }).config.localPortRange).toBe(
      ((40009 << 16) | 40000) >>> 0,
    );
  });

  const bad: [string, Record<string, unknown>, RegExp][] = [
    ['port 0', { to: '127.0.0.1:0' }, /to/],
    ['port 65536', { to: '127.0.0.1:65536' }, /to/],
    ['a name', { to: 'example.com:80' }, /not an IP/],
    ['count 0', { count: 0 }, /count/],
    ['count 1.5', { count: 1.5 }, /count/],
    ['rate -1', { rate: -1 }, /rate/],
    ['concurrency 0', { concurrency: 0 }, /concurrency/],
    ['duration 0', { durationS: 0 }, /duration/],
    ['unknown close', { close: 'later' }, /close: 'later'/],
    ['udp and reuse', { udp: true, reuseConnection: true }, /cannot be combined/],
    ['udp with server-first', { udp: true, close: 'server-first' }, /does not apply/],
    ['bind of another family', { bind: '::1' }, /family/],
    ['bind-no-port with a port', { bind: '127.0.0.1:5', bindNoPort: true }, /has a port/],
    ['reversed local range', { localPortRange: '9-1' }, /local-port-range/],
    ['linger -1', { linger: -1 }, /linger/],
  ];
  for (const [name, extra, message] of bad) {
    it(`rejects ${name} with a UsageError naming it`, () => {
      expect(() => planChurn({ to: '127.0.0.1:8080', ...extra } as never)).toThrow(UsageError);
      expect(() => planChurn({ to: '127.0.0.1:8080', ...extra } as never)).toThrow(message);
    });
  }
});

describe('parseBindAddress', () => {
  it('takes IP, IP:PORT, [IPv6]:PORT and bare IPv6', () => {
    expect(parseBindAddress('127.0.0.2')).toEqual({ host: '127.0.0.2', port: 0 });
    expect(parseBindAddress('127.0.0.2:4000')).toEqual({ host: '127.0.0.2', port: 4000 });
    expect(parseBindAddress('[::1]:4000')).toEqual({ host: '::1', port: 4000 });
    expect(parseBindAddress('::1')).toEqual({ host: '::1', port: 0 });
    expect(() => parseBindAddress('nope')).toThrow(UsageError);
  });
});

describe('the sandbox server for a churn run', () => {
  it('matches the close mode, framing and protocol', () => {
    const args = (o: object): string => serverArgvFor({ to: '127.0.0.1:8080', ...o }, 10).join(' ');
    expect(args({})).toContain('--close client-first');
    expect(args({ close: 'server-first' })).toContain('--close server-first');
    expect(args({ close: 'rst' })).toContain('--close client-first');
    expect(args({ reuseConnection: true })).toContain('--framing length-prefixed');
    expect(args({ udp: true })).toContain('--udp');
    expect(args({})).toContain('--listen 127.0.0.1:8080');
  });
});
