/**
 * The model's source NAT (src/model/nat.ts), rule by rule, and simulate()/predict() behind it.
 * Pure: no kernel here (test/model/nat-validation.test.ts holds the model to the kernel).
 */
import { describe, expect, it } from 'vitest';
import { CT_OPEN, Nat } from '../../src/model/nat.js';
import { simulate } from '../../src/model/simulate.js';
import { predict } from '../../src/model/predict.js';
import type { Rng } from '../../src/model/rng.js';
import type { ModelEvent, ModelScenario } from '../../src/model/types.js';
import type { PredictInput } from '../../src/model/predict.js';
import { judgeNat, NAT_GRID } from '../../scripts/validate-model.mjs';
import { runCli } from '../helpers/cli.js';
import { predictInputFromForm } from '../../src/ui/api.js';
import type { NatKernelFigures, NatModelRun } from '../../scripts/validate-model.mjs';

/** An Rng whose draws are given: below() returns the next offset. */
function scripted(offsets: number[]): Rng {
  let i = 0;
  return { below: () => offsets[i++ % offsets.length]!, u32: () => 0 } as unknown as Rng;
}

/** A NAT whose every port holds an entry closed at t=0 (TIME_WAIT, 120 s) with td_end 1000. */
function fullOfTimeWait(ports: number, offsets: number[]): Nat {
  const nat = new Nat({ ports, low: 40000 }, 1, scripted(offsets));
  for (let pos = 0; pos < ports; pos++) {
    nat.open(0, pos, 1000 - 8);
    nat.close(0, pos, 0, false);
  }
  return nat;
}

const base: ModelScenario = {
  rate: 1000,
  count: 300,
  portRange: { low: 20000, high: 29999 },
  twReuse: 0,
  destinations: 1,
  seed: 1,
};

describe('nf_nat_l4proto_unique_tuple and nf_nat_used_tuple_harder', () => {
  it('evicts a closing entry only in the last 32 tries of a round, and only when the sequence has advanced', () => {
    // 100 ports, offset 0: tries 0..99; the first 68 may not evict.
    const nat = fullOfTimeWait(100, [0]);
    expect(nat.choose(0, 1, 5000, 10)).toBe(68);
    expect(nat.how).toBe('evicted');
    // A sequence number behind every old entry's: nothing may be evicted, the SYN finds no port.
    expect(fullOfTimeWait(100, [0]).choose(0, 1, 500, 10)).toBe(-1);
    // Offsets wrap as a u16: 65535 % 100 = 35, then 0 (65536 wraps to 0), 1, ...
    const wrap = fullOfTimeWait(100, [65535]);
    expect(wrap.choose(0, 1, 5000, 10)).toBe(67);
    expect(wrap.how).toBe('evicted');
  });

  it('never evicts an open connection, and an expired entry is free (nf_ct_is_expired)', () => {
    const nat = new Nat({ ports: 4, low: 40000, conntrackTimeWaitSec: 2 }, 1, scripted([0]));
    for (let pos = 0; pos < 4; pos++) nat.open(0, pos, 0);
    expect(nat.choose(0, 1, 5000, 10)).toBe(-1);
    nat.close(0, 2, 1000, false);
    expect(nat.choose(0, 1, 5000, 2999)).toBe(2);
    expect(nat.how).toBe('evicted');
    nat.open(0, 2, 0);
    nat.close(0, 2, 1000, false);
    // At 3000 ms the entry closed at 1000 ms with a 2 s timeout has expired: free, not evicted.
    expect(nat.choose(0, 1, 0, 3000)).toBe(2);
    expect(nat.how).toBe('free');
  });

  it('over 128 ports tries 128, 64, 32, 16 and 8 ports from new random offsets, then gives up', () => {
    const ports = 200;
    const fill = (offsets: number[]): Nat => {
      const nat = new Nat({ ports, low: 40000 }, 1, scripted(offsets));
      for (let pos = 0; pos < ports; pos++) if (pos !== 150) nat.open(0, pos, 0);
      return nat;
    };
    // Each round from 0 misses the one free port (150): 128 + 64 + 32 + 16 + 8 tries, no port.
    expect(fill([0]).choose(0, 1, 0, 0)).toBe(-1);
    // The second round (64 tries) from 140 finds it.
    expect(fill([0, 140]).choose(0, 1, 0, 0)).toBe(150);
  });

  it("keeps the client's port when it is in range and free, unless fully-random", () => {
    const nat = new Nat({ ports: 100, low: 40000 }, 1, scripted([0]));
    expect(nat.choose(0, 40042, 0, 0)).toBe(42);
    expect(nat.how).toBe('kept');
    nat.open(0, 42, 0);
    // Held: the random search instead (offset 0: port 0).
    expect(nat.choose(0, 40042, 0, 0)).toBe(0);
    const random = new Nat({ ports: 100, low: 40000, fullyRandom: true }, 1, scripted([7]));
    expect(random.choose(0, 40042, 0, 0)).toBe(7);
    // A one-port range keeps even a held port, and the SYN is dropped at confirmation.
    const one = new Nat({ ports: 1, low: 40000 }, 1, scripted([0]));
    one.open(0, 0, 0);
    expect(one.choose(0, 40000, 5000, 0)).toBe(-1);
    expect(CT_OPEN).toBe(1);
  });
});

describe('simulate() behind a NAT', () => {
  it('client-first: the NAT evicts its own TIME_WAIT entries, so 100 ports carry 300 connections', () => {
    const r = simulate({ ...base, nat: { ports: 100 } });
    expect(r.succeeded).toBe(300);
    expect(r.nat).toMatchObject({ drops: 0, stalls: 0, collisions: 0, portsUsed: 100, evictions: 200 });
    expect(r.nat!.heldAtEnd).toEqual({ open: 0, timeWait: 100, close: 0 });
  });

  it('server-first: every NAT port reused within 60 s meets the server TIME_WAIT (a collision)', () => {
    const r = simulate({ ...base, count: 200, close: 'server-first', nat: { ports: 100 } });
    expect(r.succeeded).toBe(200);
    expect(r.nat!.collisions).toBe(100);
    expect(r.nat!.firstCollision!.atConnection).toBe(r.nat!.firstReuseAtConnection);
    // The server holds one TIME_WAIT per NAT port, not one per connection.
    expect(r.samples.at(-1)!.serverTimeWait).toBe(100);
    // Paced slower than the server's TIME_WAIT (60-62 s per port): no collision.
    const slow = simulate({ ...base, rate: 0.5, count: 150, close: 'server-first', nat: { ports: 100 } });
    expect(slow.nat!.collisions).toBe(0);
  });

  it('open connections hold their NAT ports: the 21st SYN to a 20-port NAT is dropped, retried and times out', () => {
    const events: ModelEvent[] = [];
    const sc: ModelScenario = {
      ...base,
      rate: 50,
      count: 25,
      holdSec: 3600,
      nat: { ports: 20, connectTimeoutMs: 500 },
    };
    const r = simulate(sc, (e) => events.push(e));
    expect(r.firstFailureAtConnection).toBe(21);
    expect(r.failureErrno).toBe('ETIMEDOUT');
    expect(r.succeeded).toBe(20);
    expect(events.find((e) => e.kind === 'nat-drop')).toMatchObject({ attempt: 21 });
    // With the kernel's own timeout the SYN is sent again after 1 s, 2 s, ...: connections that
    // end after 2 s free their entries (TIME_WAIT, evictable), so the 21st connects on its second
    // retransmission, 3 s after its first SYN: a stall.
    const s = simulate({ ...base, rate: 50, count: 21, holdSec: 2, nat: { ports: 20 } });
    expect(s.succeeded).toBe(21);
    expect(s.nat!.firstStall).toEqual({ atConnection: 21, sec: 0.4, ms: 3000 });
  });

  it('is deterministic per seed, and its port choice varies with the seed as the kernel draws vary', () => {
    const sc: ModelScenario = { ...base, count: 200, close: 'server-first', nat: { ports: 100 } };
    expect(simulate(sc)).toEqual(simulate(sc));
    const firsts = new Set(
      [1, 2, 3, 4, 5, 6, 7, 8].map((seed) => simulate({ ...sc, seed }).nat!.firstReuseAtConnection),
    );
    expect(firsts.size).toBeGreaterThan(1);
    for (const f of firsts) expect(f).toBeLessThanOrEqual(101);
  });

  it('a scenario without a NAT is untouched (no nat figures, same result as before the NAT existed)', () => {
    const r = simulate({ ...base, count: 150, portRange: { low: 40000, high: 40099 } });
    expect(r.nat).toBeUndefined();
    expect(r.firstFailureAtConnection).toBe(101);
  });
});

describe('predict() behind a NAT', () => {
  const input: PredictInput = {
    rate: 100,
    portRange: { low: 32768, high: 60999 },
    twReuse: 0,
    loopback: false,
    destinations: 1,
    sourceAddresses: 1,
    portMode: 'connect',
    close: 'server-first',
    durationSec: 600,
    nat: { ports: 100, fullyRandom: false, conntrackTimeWaitSec: 120 },
  };

  it('server-first: collisions from about connection 101, a sustainable rate near ports / conntrack TIME_WAIT', () => {
    const p = predict(input);
    expect(p.firstFailureSec).toBeNull();
    expect(p.nat!.firstCollision!.atConnection).toBeGreaterThan(80);
    expect(p.nat!.firstCollision!.atConnection).toBeLessThanOrEqual(101);
    // The pool fills with conntrack TIME_WAIT entries (120 s), then evictions may hit ports the
    // server still holds: at most 100 ports / 60 s, at least 100 / 122 s.
    expect(p.maxSustainableRate!).toBeGreaterThan(100 / 123);
    expect(p.maxSustainableRate!).toBeLessThan(100 / 60);
    const fix = p.fixes.find((f) => f.id === 'client-first-close')!;
    expect(fix.effect).toBe('fixes');
    expect(fix.nat!.collisions).toBe(0);
  });

  it('client-first with connections held open: the NAT stalls once they outnumber its ports', () => {
    const p = predict({ ...input, close: 'client-first', rate: 30, holdSec: 5, durationSec: 60 });
    // 30/s held 5 s = 150 open at once > 100 NAT ports: the 101st SYN is dropped.
    expect(p.nat!.firstStall!.atConnection).toBe(101);
    // Below 100 / 5 s = 20/s: once most ports are open and the rest in TIME_WAIT, a SYN finds an
    // evictable entry among its last 32 tries only by chance.
    expect(p.maxSustainableRate!).toBeGreaterThan(1);
    expect(p.maxSustainableRate!).toBeLessThan(100 / 5);
    expect(p.fixes.find((f) => f.id === 'nat-more-ports')!.effect).toBe('fixes');
  });
});

describe('judgeNat (the NAT rows of validate-model)', () => {
  const row = NAT_GRID.find((r) => r.id === 'N6')!;
  const run: NatModelRun = {
    succeeded: 200,
    failure: 'none',
    firstReuse: 95,
    collisions: 100,
    kept: 0,
    portsUsed: 100,
    stalls: 0,
    firstStall: null,
    heldTimeWait: 100,
    heldTotal: 100,
    drops: 0,
  };
  const kernel: NatKernelFigures = {
    attempted: 200,
    succeeded: 200,
    failure: 'none',
    firstReuse: 98,
    collisions: 100,
    kept: 0,
    portsUsed: 100,
    stalls: 3,
    firstStall: 108,
    heldTimeWait: 100,
    heldTotal: 100,
    held: { open: 0, timeWait: 100, close: 0 },
    insertFailed: 0,
    synRetrans: 47,
  };
  const runs = [run, { ...run, firstReuse: 101 }];

  it('accepts a kernel run within the model', () => {
    expect(judgeNat(row, kernel, runs)).toEqual({ ok: true, notes: [] });
  });

  it.each([
    [{ succeeded: 199, failure: 'ETIMEDOUT@150' }, /succeeded: kernel 199/],
    [{ portsUsed: 99 }, /portsUsed: kernel 99/],
    [{ collisions: 60 }, /collisions: kernel 60, model 100..100/],
    [{ firstReuse: 50 }, /firstReuse: kernel 50, model 95..101/],
    [{ stalls: 110 }, /stalls: kernel 110, model at most 104/],
    [{ stalls: 5, firstStall: 20 }, /first stall: kernel #20, model not before #95/],
  ])('refuses a kernel run off the model: %j', (change, message) => {
    const v = judgeNat(row, { ...kernel, ...change }, runs);
    expect(v.ok).toBe(false);
    expect(v.notes.join('; ')).toMatch(message);
  });
});

describe('twlab predict --nat-ports (CLI)', () => {
  const args = [
    'predict',
    '--rate',
    '100',
    '--port-range',
    '32768-60999',
    '--tw-reuse',
    '0',
    '--duration',
    '600',
  ];

  it('--json carries the NAT input and figures; text names the NAT and the collisions', async () => {
    const r = await runCli([...args, '--nat-ports', '40000-40099', '--close', 'server-first', '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.input.nat).toEqual({
      ports: 100,
      low: 40000,
      fullyRandom: false,
      conntrackTimeWaitSec: 120,
    });
    expect(doc.nat.collisions).toBeGreaterThan(0);
    expect(doc.nat.firstCollision.atConnection).toBeLessThanOrEqual(101);
    expect(doc.fixes.map((f: { id: string }) => f.id)).toEqual(
      expect.arrayContaining(['nat-more-ports', 'client-first-close', 'conntrack-tw-timeout']),
    );
    const text = await runCli([
      ...args,
      '--nat-ports',
      '100',
      '--close',
      'server-first',
      '--conntrack-tw-timeout',
      '30',
    ]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(
      /^NAT: 100 port\(s\) \(outside the client ports\) per destination, not fully-random, conntrack TIME_WAIT 30 s/m,
    );
    expect(text.stdout).toMatch(/^Server TIME_WAIT collisions: from connection \d+/m);
  });

  it('--help shows the NAT flags with an example', async () => {
    const r = await runCli(['predict', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/--nat-ports <N\|LOW-HIGH>/);
    expect(r.stdout).toMatch(/twlab predict .*--nat-ports 100/);
  });

  it.each([
    [['--nat-fully-random'], /^twlab: --nat-fully-random: only with --nat-ports/],
    [['--conntrack-tw-timeout', '30'], /--conntrack-tw-timeout 30: only with --nat-ports/],
    [['--connect-timeout', '3'], /--connect-timeout 3: only with --nat-ports/],
    [['--nat-ports', '0'], /--nat-ports: 0 is out of range \(accepted: 1 to 65535\)/],
    [['--nat-ports', '70000'], /--nat-ports: 70000 is out of range/],
    [['--nat-ports', '5-3'], /--nat-ports: '5-3' has A > B/],
    [
      ['--nat-ports', 'lots'],
      /--nat-ports: 'lots' is not accepted \(accepted: a number of ports 1 to 65535, or a range LOW-HIGH\)/,
    ],
    [['--nat-ports', '10', '--conntrack-tw-timeout', '-1'], /--conntrack-tw-timeout: -1 is out of range/],
    [
      ['--nat-ports', '10', '--connect-timeout', '0'],
      /--connect-timeout: 0 is out of range \(accepted: a number > 0, up to 127\)/,
    ],
    [['--nat-ports', '10', '--connect-timeout', '200'], /--connect-timeout: 200 is out of range/],
  ])('rejects %j with one line and exit 2', async (extra, message) => {
    const r = await runCli(['predict', '--rate', '5', ...extra]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(message);
  });
});

describe('the dashboard predict form behind a NAT (ui/api.ts, the CLI parsers)', () => {
  it('takes natPorts, natFullyRandom and conntrackTwTimeout; no NAT when natPorts is empty', () => {
    expect(predictInputFromForm({ rate: 10 }).nat).toBeUndefined();
    expect(predictInputFromForm({ rate: 10, natPorts: '' }).nat).toBeUndefined();
    expect(
      predictInputFromForm({
        rate: 10,
        natPorts: '40000-40099',
        natFullyRandom: 'true',
        conntrackTwTimeout: '30',
      }).nat,
    ).toEqual({ ports: 100, low: 40000, fullyRandom: true, conntrackTimeWaitSec: 30 });
    expect(predictInputFromForm({ rate: 10, natPorts: 64 }).nat).toMatchObject({
      ports: 64,
      fullyRandom: false,
    });
  });

  it.each([
    [{ natPorts: '0' }, /^natPorts: 0 is out of range/],
    [{ natPorts: 'many' }, /^natPorts: 'many' is not accepted/],
    [{ natPorts: '10', natFullyRandom: 'yes' }, /^natFullyRandom: /],
    [{ natPorts: '10', conntrackTwTimeout: '1e3' }, /^conntrackTwTimeout: /],
  ])('refuses %j naming the field', (fields, message) => {
    expect(() => predictInputFromForm({ rate: 10, ...fields })).toThrow(message);
  });
});
