/**
 * S0-01: the seed's client dies with errno 99 after about as many connections as there are
 * ephemeral ports, its ports in TIME_WAIT. Measured on loopback and across two hosts, with
 * tcp_tw_reuse 0, 1 and 2, each followed by one retry 1.1 s after the failure.
 */
import { runSeedClient, SMALL_RANGE, rangeSize, type SeedMeasurement } from '../harness.js';
import type { Claim, Judgement, Series } from '../types.js';
import { SEED0, exhaustedAtPortCount, outcome } from './s0-common.js';

export interface S0_01Scenario extends SeedMeasurement {
  where: 'loopback' | 'two hosts';
  twReuse: number;
}

export interface S0_01Measured {
  scenarios: S0_01Scenario[];
}

function holds(s: S0_01Scenario): boolean {
  return exhaustedAtPortCount(s) && s.clientTimeWait >= 0.9 * (s.failedAfter ?? 0);
}

function describe(s: S0_01Scenario): string {
  const retry = s.retry
    ? `; a retry ${s.retry.afterMs} ms later ${s.retry.ok ? 'succeeded' : `failed (${s.retry.error})`}`
    : '';
  return `${s.where}, tcp_tw_reuse=${s.twReuse}: ${outcome(s)} of ${s.ports} ports, ${s.clientTimeWait} client sockets in TIME_WAIT${retry}`;
}

function judgeS0_01(m: S0_01Measured): Judgement {
  const ok = m.scenarios.filter(holds);
  const conditions = m.scenarios.map((s) => `${holds(s) ? 'holds' : 'does not hold'}: ${describe(s)}`);
  const recovered = m.scenarios.filter((s) => s.retry?.ok).map((s) => `${s.where} tw_reuse=${s.twReuse}`);
  const recovery = recovered.length
    ? ` Where the kernel may reuse TIME_WAIT ports (${recovered.join(', ')}), a connect 1.1 s after the failure succeeded again: the ports are reusable once their TIME_WAIT is older than tcp_tw_reuse_delay, but a client connecting as fast as it can still hits the wall first.`
    : '';
  if (ok.length === m.scenarios.length) {
    return {
      verdict: 'confirmed',
      explanation: `In every setting the client failed with EADDRNOTAVAIL after about as many connections as ports, with its ports in TIME_WAIT.${recovery}`,
      conditions,
    };
  }
  if (ok.length === 0) {
    return {
      verdict: 'refuted',
      explanation: 'In no setting did the client fail at the port count with its ports in TIME_WAIT.',
      conditions,
    };
  }
  return {
    verdict: 'depends',
    explanation: `The client ran out of ports in ${ok.length} of ${m.scenarios.length} settings; the conditions list which.${recovery}`,
    conditions,
  };
}

export const claim: Claim<S0_01Measured> = {
  id: 'S0-01',
  claim:
    'A client that connects, sends and closes in a loop fails with errno 99 (EADDRNOTAVAIL) after about as many iterations as there are ephemeral ports, its ports in TIME_WAIT.',
  source: {
    seed: SEED0,
    where: 'post, and comment 1 (Kristof Provost)',
    quote:
      "After roughly 25.000 Iterations the client quits with a friendly: error: (99, 'Cannot assign requested address')",
  },
  estimateMs: 12_000,
  budgetMs: 100_000,
  async run(ctx) {
    const variants: Array<{ hosts: 1 | 2; twReuse: number }> = [];
    for (const hosts of [1, 2] as const) for (const twReuse of [0, 1, 2]) variants.push({ hosts, twReuse });
    // All at once: each mostly waits (a 1.1 s retry pause), and the sandboxes are independent.
    ctx.progress('churning on loopback and across 2 hosts, tcp_tw_reuse 0, 1 and 2');
    const scenarios: S0_01Scenario[] = await Promise.all(
      variants.map(async (v) => ({
        ...(await runSeedClient(ctx, {
          hosts: v.hosts,
          sysctls: { 'net.ipv4.tcp_tw_reuse': v.twReuse },
          count: rangeSize(SMALL_RANGE) * 3,
          retryAfterMs: 1100,
          sampleMs: 100,
        })),
        where: v.hosts === 1 ? ('loopback' as const) : ('two hosts' as const),
        twReuse: v.twReuse,
      })),
    );
    return { scenarios };
  },
  judge: judgeS0_01,
  series(m): Series[] {
    // tcp_tw_reuse=0 only: the seed's setting, where the pile-up is plainest (4 lines, 2 units).
    return m.scenarios
      .filter((s) => s.twReuse === 0 && s.samples?.length)
      .flatMap((s) => [
        {
          name: `TIME_WAIT, ${s.where}`,
          unit: 'sockets',
          points: s.samples!.map(([t, tw]) => [t, tw] as [number, number]),
        },
        {
          name: `free ports, ${s.where}`,
          unit: 'ports',
          points: s.samples!.map(([t, , free]) => [t, free] as [number, number]),
        },
      ]);
  },
};
