/**
 * S0-08: `sysctl -w net.ipv4.tcp_tw_recycle=1` fixes it (comments 7 and 8). The sandbox tries to
 * set the key; if this kernel has no such key the claim cannot apply here. If it does, the seed's
 * client is run with it.
 */
import { runSeedClient, SMALL_RANGE, rangeSize, type SeedMeasurement } from '../harness.js';
import type { Claim, Judgement } from '../types.js';
import { SEED0, outcome, settingOf } from './s0-common.js';

export interface S0_08Measured {
  /** What the kernel did with the write: applied value, 'not-present' or 'rejected'. */
  tcpTwRecycle: string;
  run: SeedMeasurement | null;
}

const KEY = 'net.ipv4.tcp_tw_recycle';

function judgeS0_08(m: S0_08Measured): Judgement {
  if (m.tcpTwRecycle === 'not-present' || m.tcpTwRecycle === 'rejected' || m.run === null) {
    return {
      verdict: 'not-applicable',
      explanation: `This kernel has no usable ${KEY} (the write was ${m.tcpTwRecycle}): the advice cannot be followed here, so it fixes nothing.`,
    };
  }
  const conditions = [`${KEY}=${m.tcpTwRecycle}: ${outcome(m.run)}`];
  if (m.run.failedAfter === null) {
    return {
      verdict: 'confirmed',
      explanation: `With ${KEY}=1 the client ran ${m.run.attempted} connections on ${m.run.ports} ports without failing.`,
      conditions,
    };
  }
  return { verdict: 'refuted', explanation: `Even with ${KEY}=1 the client ${outcome(m.run)}.`, conditions };
}

export const claim: Claim<S0_08Measured> = {
  id: 'S0-08',
  claim: '`sysctl -w net.ipv4.tcp_tw_recycle=1` fixes the failing client.',
  source: {
    seed: SEED0,
    where: 'comments 7 and 8 (Angel Olivera)',
    quote: "Err, I meant `sysctl -w net.ipv4.tcp_tw_recycle=1'.",
  },
  estimateMs: 1_500,
  async run(ctx) {
    const run = await runSeedClient(ctx, {
      hosts: 2,
      sysctls: { [KEY]: 1, 'net.ipv4.tcp_tw_reuse': 0 },
      count: rangeSize(SMALL_RANGE) * 3,
    });
    const status = settingOf(run, KEY) ?? 'not-present';
    return { tcpTwRecycle: status, run: status === 'not-present' || status === 'rejected' ? null : run };
  },
  judge: judgeS0_08,
};
