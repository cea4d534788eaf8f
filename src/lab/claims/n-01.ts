/**
 * N-01: a NAT with N ports carries at most N connections to one destination per TIME_WAIT period.
 * Two runs of 3N connections to one server through a 100-port source NAT, one closing at the
 * client first and one at the server first; each run lasts a few seconds, far less than either
 * TIME_WAIT (TCP's 60 s, conntrack's 120 s). If the claim held, both would fail or stall at N.
 */
import { SEVERAL_STEPS_BUDGET_MS } from '../runner.js';
import type { Claim, Judgement } from '../types.js';
import { FIELD, runNatChurn, runText, type NatChurnRun } from './n-common.js';

export interface N01Measured {
  clientFirst: NatChurnRun;
  serverFirst: NatChurnRun;
}

/** More than N connections went through before any failure or stall, within one TIME_WAIT period. */
const beyond = (r: NatChurnRun): boolean => r.beforeFailure > r.poolSize && r.durationMs < 60_000;
/** Stopped (failed or stalled) within a few connections of N. */
const atPool = (r: NatChurnRun): boolean => r.beforeFailure <= r.poolSize + Math.max(2, r.poolSize * 0.1);

function judgeN01(m: N01Measured): Judgement {
  const cf = `client-first: ${runText(m.clientFirst)}`;
  const sf = `server-first: ${runText(m.serverFirst)}`;
  const n = m.clientFirst.poolSize;
  if (beyond(m.clientFirst) && beyond(m.serverFirst)) {
    return {
      verdict: 'refuted',
      explanation: `Both runs carried more than ${n} connections through ${n} NAT ports to one destination within seconds (${cf}; ${sf}): on this kernel a NAT port whose connection has closed is handed out again at once, so N ports are no ceiling per TIME_WAIT period. What the reuse costs when the server closes first is N-03's subject.`,
      conditions: [cf, sf],
    };
  }
  if (atPool(m.clientFirst) && atPool(m.serverFirst)) {
    return {
      verdict: 'confirmed',
      explanation: `Both runs stopped at about the pool's ${n} ports (${cf}; ${sf}).`,
      conditions: [cf, sf],
    };
  }
  return {
    verdict: 'depends',
    explanation: `It depends on who closes first: ${beyond(m.clientFirst) ? 'closing at the client' : 'closing at the server'} carried more than ${n} connections through ${n} NAT ports, the other did not.`,
    conditions: [cf, sf],
  };
}

export const claim: Claim<N01Measured> = {
  id: 'N-01',
  claim:
    'A NAT with N ports can carry at most N connections to one destination per TIME_WAIT period (new connections to it then fail until ports come free).',
  source: {
    seed: FIELD,
    where:
      'Open Telekom Cloud, NAT Gateway FAQ "What Are SNAT Connections?", https://docs.otc.t-systems.com/nat-gateway/umn/faqs/snat/what_are_snat_connections.html',
    quote:
      'A NAT gateway supports up to 55,000 concurrent connections for each destination IP address and port. ... 55,000 connections will be used up in about 10 minutes ... As a result, new connections cannot be established.',
  },
  estimateMs: 12_000,
  budgetMs: SEVERAL_STEPS_BUDGET_MS,
  async run(ctx) {
    const [clientFirst, serverFirst] = await Promise.all([
      runNatChurn(ctx, { close: 'client-first' }),
      runNatChurn(ctx, { close: 'server-first' }),
    ]);
    return { clientFirst, serverFirst };
  },
  judge: judgeN01,
};
