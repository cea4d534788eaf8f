/**
 * N-04: conntrack's TIME_WAIT timeout (nf_conntrack_tcp_timeout_time_wait, 120 s) is what limits
 * NAT port reuse, so lowering it helps. 3N client-first connections through a 100-port NAT with
 * the router's timeout at its default and at 2 s. If the timeout were the limit, the default run
 * would stop at N while its entries sit in TIME_WAIT, and the short one would not.
 */
import { SEVERAL_STEPS_BUDGET_MS } from '../runner.js';
import type { Claim, Judgement } from '../types.js';
import { FIELD, runNatChurn, runText, type NatChurnRun } from './n-common.js';

export interface N04Measured {
  defaultTimeout: NatChurnRun;
  shortTimeout: NatChurnRun;
}

const beyond = (r: NatChurnRun): boolean => r.beforeFailure > r.poolSize;
const atPool = (r: NatChurnRun): boolean => r.beforeFailure <= r.poolSize + Math.max(2, r.poolSize * 0.1);

function judgeN04(m: N04Measured): Judgement {
  const d = m.defaultTimeout;
  const s = m.shortTimeout;
  const say = (r: NatChurnRun): string =>
    `conntrack TIME_WAIT ${r.conntrackTimeWaitS} s: ${runText(r)}; after it ${r.conntrackByState['TIME_WAIT'] ?? 0} entries in TIME_WAIT${r.conntrackTimeWaitMinLeftS !== null ? `, the soonest expiring in ${r.conntrackTimeWaitMinLeftS} s` : ''}`;
  const conditions = [say(d), say(s)];
  const held = d.conntrackByState['TIME_WAIT'] ?? 0;
  if (beyond(d) && held > 0 && (d.conntrackTimeWaitMinLeftS ?? 0) * 1000 > d.durationMs) {
    return {
      verdict: 'refuted',
      explanation: `At the default timeout (${d.conntrackTimeWaitS} s) ${d.beforeFailure} connections went through ${d.poolSize} NAT ports without a failure (${d.stalls} stalled), while the router still held ${held} entries in TIME_WAIT with ${d.conntrackTimeWaitMinLeftS} s or more to live: on this kernel a new connection is given a NAT port whose entry is in TIME_WAIT (N-05), so that timeout does not hold ports back, and shortening it (${s.conntrackTimeWaitS} s: ${s.beforeFailure} without a failure, ${s.stalls} stalled) buys nothing here. (With the server closing first, N-03 measures what the short timeout does.)`,
      conditions,
    };
  }
  if (atPool(d) && beyond(s)) {
    return {
      verdict: 'confirmed',
      explanation: `At the default timeout the NAT stopped at about its ${d.poolSize} ports, at ${s.conntrackTimeWaitS} s it did not.`,
      conditions,
    };
  }
  return {
    verdict: 'depends',
    explanation: `The two timeouts did not separate cleanly: ${conditions.join('; ')}.`,
    conditions,
  };
}

export const claim: Claim<N04Measured> = {
  id: 'N-04',
  claim:
    "conntrack's TIME_WAIT timeout (nf_conntrack_tcp_timeout_time_wait, 120 s) is what limits how fast a NAT can reuse its ports; lower it.",
  source: {
    seed: FIELD,
    where:
      'devops-insider, "TCP TIME-WAIT" (kernel network notes), https://devops-insider.mygraphql.com/zh-cn/latest/kernel/network/kernel-tcp/tcp-time-wait/tcp-time-wait.html',
    quote:
      'Lower the conntrack tracking time for TIME_WAIT connections ... nf_conntrack tracks these for 120 seconds by default (configurable through the sysctl value nf_conntrack_tcp_timeout_time_wait) Reduce this to 65',
  },
  estimateMs: 12_000,
  budgetMs: SEVERAL_STEPS_BUDGET_MS,
  async run(ctx) {
    const [defaultTimeout, shortTimeout] = await Promise.all([
      runNatChurn(ctx, { close: 'client-first' }),
      runNatChurn(ctx, { close: 'client-first', ctTimeWaitS: 2 }),
    ]);
    return { defaultTimeout, shortTimeout };
  },
  judge: judgeN04,
};
