/** S0-03: setting SO_REUSEADDR on the client makes no difference (comment 5). */
import { runSeedClient, SMALL_RANGE, rangeSize, type SeedMeasurement } from '../harness.js';
import type { Claim, Judgement } from '../types.js';
import { SEED0, outcome } from './s0-common.js';

export interface S0_03Measured {
  withoutReuseAddr: SeedMeasurement;
  withReuseAddr: SeedMeasurement;
}

function judgeS0_03(m: S0_03Measured): Judgement {
  const a = m.withoutReuseAddr;
  const b = m.withReuseAddr;
  const tolerance = Math.max(2, Math.round(a.ports * 0.05));
  const same =
    (a.failedAfter === null) === (b.failedAfter === null) &&
    Math.abs((a.failedAfter ?? a.attempted) - (b.failedAfter ?? b.attempted)) <= tolerance &&
    a.firstError === b.firstError;
  const conditions = [`without SO_REUSEADDR: ${outcome(a)}`, `with SO_REUSEADDR: ${outcome(b)}`];
  return same
    ? {
        verdict: 'confirmed',
        explanation: `The client failed the same way with and without SO_REUSEADDR (within ${tolerance} connections): connect() picks its port by the 4-tuple and TIME_WAIT, and SO_REUSEADDR only relaxes bind().`,
        conditions,
      }
    : {
        verdict: 'refuted',
        explanation: 'SO_REUSEADDR on the client changed the outcome: see the two runs.',
        conditions,
      };
}

export const claim: Claim<S0_03Measured> = {
  id: 'S0-03',
  claim: 'Setting SO_REUSEADDR on the client makes no difference.',
  source: {
    seed: SEED0,
    where: 'comment 5 (Bastian), answering comment 4',
    quote: 'setting this option on or off in the client seems to have no effect',
  },
  estimateMs: 2_000,
  async run(ctx) {
    const count = rangeSize(SMALL_RANGE) * 3;
    const base = { hosts: 1 as const, sysctls: { 'net.ipv4.tcp_tw_reuse': 0 }, count };
    const [withoutReuseAddr, withReuseAddr] = await Promise.all([
      runSeedClient(ctx, { ...base, client: { reuseAddr: false } }),
      runSeedClient(ctx, { ...base, client: { reuseAddr: true } }),
    ]);
    return { withoutReuseAddr, withReuseAddr };
  },
  judge: judgeS0_03,
};
