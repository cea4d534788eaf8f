/**
 * N-02: `--random-fully` (nftables `fully-random`) prevents port collisions. The same churn runs
 * through a 100-port NAT with and without it, the server closing first, 3N connections: once the
 * pool has gone round, every NAT port the NAT hands out again may meet a connection the server
 * still remembers (its TIME_WAIT for that 4-tuple). A collision shows as a SYN the client had to
 * send again, a SYN the router dropped at conntrack insertion (insert_failed), or a failed connect.
 */
import { SEVERAL_STEPS_BUDGET_MS } from '../runner.js';
import type { Claim, Judgement } from '../types.js';
import { FIELD, runNatChurn, runText, type NatChurnRun } from './n-common.js';

export interface N02Measured {
  withoutFullyRandom: NatChurnRun;
  withFullyRandom: NatChurnRun;
}

/** Collisions a run measured: SYNs sent again, insertions conntrack refused, failed connects. */
export function collisions(r: NatChurnRun): number {
  return r.clientSynRetrans + r.insertFailed + (r.firstError ? 1 : 0);
}

function judgeN02(m: N02Measured): Judgement {
  const off = `without: ${runText(m.withoutFullyRandom)}, insert_failed ${m.withoutFullyRandom.insertFailed}`;
  const on = `fully-random: ${runText(m.withFullyRandom)}, insert_failed ${m.withFullyRandom.insertFailed}`;
  const cOn = collisions(m.withFullyRandom);
  const cOff = collisions(m.withoutFullyRandom);
  if (cOn > 0) {
    return {
      verdict: 'refuted',
      explanation: `With fully-random the NAT still collided ${cOn} time(s) (${on}; ${off}). Randomising the port spreads concurrent allocations (the insertion race it was added for), but it cannot pick a port nobody remembers: with ${m.withFullyRandom.poolSize} ports and ${m.withFullyRandom.attempted} connections every port comes round while the server still holds TIME_WAIT for it.`,
      conditions: [on, off],
    };
  }
  if (cOff > 0) {
    return {
      verdict: 'confirmed',
      explanation: `Without fully-random the NAT collided ${cOff} time(s), with it none (${off}; ${on}).`,
      conditions: [off, on],
    };
  }
  return {
    verdict: 'not-tested',
    explanation: `Neither run collided (${off}; ${on}), so this run cannot show what fully-random prevents.`,
  };
}

export const claim: Claim<N02Measured> = {
  id: 'N-02',
  claim: '`--random-fully` (fully random SNAT port selection) prevents port collisions at the NAT.',
  source: {
    seed: FIELD,
    where:
      'kube-ovn issue #1956 "Add --random-fully to VPC Gateway snat rule", https://github.com/kubeovn/kube-ovn/issues/1956',
    quote:
      'Linux kernel realization that sometimes causes multiple flows to get mapped to the same IP:PORT and consequently some suffer packet drops. Iptables supports other ways to allocate ports, controlled with the option `--random-fully`. This is helpful to slove `conntrack race` problem.',
  },
  estimateMs: 12_000,
  budgetMs: SEVERAL_STEPS_BUDGET_MS,
  async run(ctx) {
    const [withoutFullyRandom, withFullyRandom] = await Promise.all([
      runNatChurn(ctx, { close: 'server-first' }),
      runNatChurn(ctx, { close: 'server-first', fullyRandom: true }),
    ]);
    return { withoutFullyRandom, withFullyRandom };
  },
  judge: judgeN02,
};
