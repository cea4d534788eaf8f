/**
 * predict(): figures for a workload and its fixes, all from model runs; and the CLI contract.
 */
import { describe, expect, it } from 'vitest';
import { maxSustainableRate, predict } from '../../src/model/index.js';
import type { PredictInput } from '../../src/model/index.js';
import { runCli } from '../helpers/cli.js';

const small: PredictInput = {
  rate: 10,
  portRange: { low: 40000, high: 40499 },
  twReuse: 0,
  loopback: false,
  destinations: 1,
  sourceAddresses: 1,
  portMode: 'connect',
  close: 'client-first',
  durationSec: 3600,
};

describe('predict', () => {
  it('finds the first failure, the steady TIME_WAIT and the sustainable rate', () => {
    const p = predict(small);
    // 500 ports at 10/s: the 501st connection, at 50 s, before any TIME_WAIT ends.
    expect(p.firstFailureAtConnection).toBe(501);
    expect(p.firstFailureSec).toBeCloseTo(50, 6);
    expect(p.timeWaitSteadyState).toBeGreaterThan(480);
    expect(p.timeWaitSteadyState).toBeLessThanOrEqual(500);
    // 500 ports held 60-62 s each.
    // (found by bisection to 1%)
    expect(p.maxSustainableRate).toBeGreaterThan((500 / 62.1) * 0.985);
    expect(p.maxSustainableRate).toBeLessThan(500 / 60);
  });

  it('ranks fixes that stop the failure first, and says what each costs', () => {
    const p = predict(small);
    const ids = p.fixes.map((f) => f.id);
    expect(ids).toEqual(
      expect.arrayContaining([
        'tw-reuse-1',
        'wider-range',
        'more-source-addresses',
        'server-first-close',
        'linger-zero',
        'reuse-connections',
      ]),
    );
    expect(p.fixes.map((f) => f.rank)).toEqual(p.fixes.map((_, i) => i + 1));
    for (const f of p.fixes) {
      expect(f.caveat.length).toBeGreaterThan(0);
      expect(f.effect).toBe('fixes');
      expect(f.firstFailureSec).toBeNull();
    }
  });

  it('sees that more destinations do not help bind-before-connect, and that bind-no-port does', () => {
    const bind: PredictInput = { ...small, rate: 20, destinations: 4, portMode: 'bind-before-connect' };
    const p = predict(bind);
    expect(p.firstFailureAtConnection).toBe(501);
    const fix = p.fixes.find((f) => f.id === 'bind-no-port')!;
    expect(fix.effect).toBe('fixes');
    expect(fix.maxSustainableRate!).toBeGreaterThan(p.maxSustainableRate!);
    const reuse = p.fixes.find((f) => f.id === 'tw-reuse-1')!;
    expect(reuse.effect).toBe('no-effect');
  });

  it("holds each port for the peer's close latency too (--peer-close)", () => {
    // tcp_tw_reuse=1 on loopback: a port comes back tcp_tw_reuse_delay (1 s) after the peer's FIN.
    // 500 ports, so about 500 / 1 s without latency, 500 / 1.5 s when the peer closes 500 ms later.
    const reuse: PredictInput = { ...small, twReuse: 1, loopback: true, twReuseDelayMs: 1000 };
    const quick = maxSustainableRate(reuse)!;
    const slow = maxSustainableRate({ ...reuse, peerCloseMs: 500 })!;
    expect(quick).toBeGreaterThan(500 * 0.95);
    expect(quick).toBeLessThanOrEqual(500);
    expect(slow).toBeGreaterThan((500 / 1.5) * 0.95);
    expect(slow).toBeLessThanOrEqual(500 / 1.5);
    // The latency changes nothing when the server closes first.
    const serverFirst = { ...small, close: 'server-first' as const };
    expect(predict({ ...serverFirst, peerCloseMs: 500 }).maxSustainableRate).toBe(
      predict(serverFirst).maxSustainableRate,
    );
  });

  it('reports never within the duration, and an unbounded rate when ports never limit', () => {
    const p = predict({ ...small, durationSec: 20 });
    expect(p.firstFailureSec).toBeNull();
    expect(maxSustainableRate({ ...small, close: 'rst' })).toBeNull();
  });
});

describe('twlab predict (CLI)', () => {
  it('prints the --json fields, with host defaults named', async () => {
    const r = await runCli(['predict', '--rate', '20', '--port-range', '40000-40999', '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    for (const k of [
      'firstFailureSec',
      'firstFailureAtConnection',
      'timeWaitSteadyState',
      'maxSustainableRate',
      'fixes',
    ]) {
      expect(doc).toHaveProperty(k);
    }
    expect(doc.settings.ip_local_port_range).toEqual({ value: '40000-40999', source: 'flag' });
    expect(['host', 'default']).toContain(doc.settings.tcp_tw_reuse.source);
    expect(Array.isArray(doc.fixes)).toBe(true);
  });

  it('says in text which values came from this host', async () => {
    const r = await runCli(['predict', '--rate', '5', '--tw-reuse', '0', '--port-range', '40000-40199']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/read from this host: .*tcp_max_tw_buckets/);
    expect(r.stdout).toMatch(/First EADDRNOTAVAIL: +after 40\.0 s \(connection 201\)/);
  });

  it("takes the peer's close latency into the workload (--peer-close)", async () => {
    const args = ['predict', '--rate', '5', '--tw-reuse', '1', '--loopback', '--port-range', '40000-40199'];
    const r = await runCli([...args, '--peer-close', '250', '--json']);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.input.peerCloseMs).toBe(250);
    const text = await runCli([...args, '--peer-close', '250']);
    expect(text.stdout).toMatch(/the peer closes 250 ms after the client/);
  });

  it.each([
    [['--rate', '0'], /--rate: 0/],
    [['--rate', '-3'], /--rate/],
    [['--rate', 'abc'], /--rate: 'abc'/],
    [['--rate', '5', '--port-range', '5000-4000'], /--port-range: '5000-4000' has A > B/],
    [['--rate', '5', '--port-range', '0-4000'], /--port-range: 0 is out of range/],
    [['--rate', '5', '--port-range', '1-70000'], /--port-range: 70000 is out of range/],
    [['--rate', '5', '--duration', '-1'], /--duration: -1 is out of range/],
    [['--rate', '5', '--tw-reuse', '3'], /--tw-reuse: '3'/],
    [['--rate', '5', '--close', 'later'], /--close: 'later'/],
    [['--rate', '5', '--bind-before-connect', '--bind-no-port'], /choose one/],
    [['--rate', '5', '--peer-close', '-1'], /--peer-close: -1 is out of range/],
    [
      ['--rate', '5', '--peer-close', '20', '--close', 'server-first'],
      /--peer-close 20: only with --close client-first/,
    ],
    [['--port-range', '1-2'], /--rate/],
  ])('rejects %j with one line and exit 2', async (args, message) => {
    const r = await runCli(['predict', ...args]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(message);
  });
});
