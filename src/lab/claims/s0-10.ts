/**
 * S0-10: "SO_REUSEADDR will solve the problem" (comment 10). The seed's server already sets it;
 * here the client sets it too, alone and with bind(ip, 0) before connect, on loopback as in the seed.
 */
import { runSeedClient, SMALL_RANGE, rangeSize, type SeedMeasurement } from '../harness.js';
import type { Claim, Judgement } from '../types.js';
import { SEED0, outcome } from './s0-common.js';

export interface S0_10Measured {
  variants: Array<SeedMeasurement & { variant: string }>;
}

function judgeS0_10(m: S0_10Measured): Judgement {
  const conditions = m.variants.map((v) => `${v.variant}: ${outcome(v)} on ${v.ports} ports`);
  const solved = m.variants.filter((v) => v.failedAfter === null);
  if (solved.length > 0) {
    return {
      verdict: 'confirmed',
      explanation: `With ${solved.map((v) => v.variant).join(' / ')} the client ran ${solved[0]!.attempted} connections on ${solved[0]!.ports} ports without failing.`,
      conditions,
    };
  }
  const worst = Math.max(...m.variants.map((v) => v.failedAfter ?? 0));
  return {
    verdict: 'refuted',
    explanation: `SO_REUSEADDR did not stop the failure: every variant still failed by connection ${worst} on ${m.variants[0]?.ports ?? '?'} ports. It lets bind() share a port with TIME_WAIT sockets, but connect() still refuses a 4-tuple that a TIME_WAIT socket holds.`,
    conditions,
  };
}

export const claim: Claim<S0_10Measured> = {
  id: 'S0-10',
  claim: 'SO_REUSEADDR solves the problem.',
  source: {
    seed: SEED0,
    where: 'comment 10 (Naveen Kumar Molleti)',
    quote: 'However, as mentioned earlier, SO_REUSEADDR will solve the problem.',
  },
  estimateMs: 2_000,
  async run(ctx) {
    const base = {
      hosts: 1 as const,
      sysctls: { 'net.ipv4.tcp_tw_reuse': 0 },
      count: rangeSize(SMALL_RANGE) * 3,
    };
    const [plain, bound] = await Promise.all([
      runSeedClient(ctx, { ...base, client: { reuseAddr: true } }),
      runSeedClient(ctx, { ...base, client: { reuseAddr: true, bindAddresses: ['127.0.0.1'], bindPort: 0 } }),
    ]);
    return {
      variants: [
        { ...plain, variant: 'SO_REUSEADDR on client and server' },
        { ...bound, variant: 'SO_REUSEADDR + bind(127.0.0.1, 0) before connect' },
      ],
    };
  },
  judge: judgeS0_10,
};
