/**
 * N-03: when the server closes first behind a NAT, new connections can stall. 3N connections
 * through a 100-port NAT with the server closing first (the server keeps TIME_WAIT for every
 * NAT port and destination), with the router's conntrack TIME_WAIT timeout at its default and
 * at 2 s; the same churn closing at the client first is the control. A stall is a connection
 * that took 500 ms or more (its SYN sent again after the 1 s timer); a connect that timed out
 * (5 s) stops the run.
 */
import { SEVERAL_STEPS_BUDGET_MS } from '../runner.js';
import type { Claim, Judgement } from '../types.js';
import { FIELD, runNatChurn, runText, type NatChurnRun } from './n-common.js';

export interface N03Measured {
  serverFirst: NatChurnRun;
  serverFirstShortConntrack: NatChurnRun;
  clientFirst: NatChurnRun;
}

/** Stalled or timed-out connections of a run. */
export const troubles = (r: NatChurnRun): number => r.stalls + (r.firstError ? 1 : 0);

function judgeN03(m: N03Measured): Judgement {
  const sf = [m.serverFirst, m.serverFirstShortConntrack];
  const say = (r: NatChurnRun): string =>
    `${r.close}, conntrack TIME_WAIT ${r.conntrackTimeWaitS} s: ${runText(r)}`;
  const conditions = [...sf.map(say), say(m.clientFirst)];
  const bad = sf.reduce((n, r) => n + troubles(r), 0);
  const resent = sf.reduce((n, r) => n + r.clientSynRetrans, 0);
  const control = m.clientFirst.clientSynRetrans;
  if (bad === 0) {
    return {
      verdict: 'refuted',
      explanation: `No connection stalled or timed out with the server closing first (${conditions.join('; ')}).`,
      conditions,
    };
  }
  // A stall can also be the machine's (a starved CPU): the protocol's own trace is the SYNs the
  // client had to send again, which the client-first control, through the same NAT, must not share.
  if (control * 2 >= resent) {
    return {
      verdict: 'not-tested',
      explanation: `The client-first control sent about as many SYNs again (${control}) as the server-first runs (${resent}): something else than the server's TIME_WAIT slowed this run (${conditions.join('; ')}).`,
    };
  }
  const short = m.serverFirstShortConntrack;
  return {
    verdict: 'confirmed',
    explanation: `With the server closing first ${bad} connection(s) stalled or timed out and ${resent} SYNs were sent again, against ${control} closing at the client: once the ${m.serverFirst.poolSize}-port pool has gone round, a reused NAT port meets the server's own TIME_WAIT for that 4-tuple (${m.serverFirst.serverTimeWait} held there after the default run), and the client has to send its SYN again, at worst after the 1 s timer.${short.firstError ? ` With conntrack's TIME_WAIT shortened to ${short.conntrackTimeWaitS} s it got worse: the run stopped with ${short.firstError} at connection ${short.failedAtIteration ?? '?'}.` : ''}`,
    conditions,
  };
}

export const claim: Claim<N03Measured> = {
  id: 'N-03',
  claim:
    "When the server closes first, clients behind a NAT can see new connections stall or fail: a reused NAT port meets the server's TIME_WAIT.",
  source: {
    seed: FIELD,
    where:
      'Microsoft support, KB 2596065 (outgoing SecureNAT connections through TMG), https://mskb.pkisolutions.com/en-us/help/2596065',
    quote:
      'The outgoing source port is used to make a new outgoing connection to the same external server. The previous connection on the external server is in the TIME_WAIT state. In this scenario, this connection attempt may fail.',
  },
  estimateMs: 15_000,
  budgetMs: SEVERAL_STEPS_BUDGET_MS,
  async run(ctx) {
    const [serverFirst, serverFirstShortConntrack, clientFirst] = await Promise.all([
      runNatChurn(ctx, { close: 'server-first' }),
      runNatChurn(ctx, { close: 'server-first', ctTimeWaitS: 2 }),
      runNatChurn(ctx, { close: 'client-first' }),
    ]);
    return { serverFirst, serverFirstShortConntrack, clientFirst };
  },
  judge: judgeN03,
};
