/**
 * S0-07: "Linux hardcodes this timeout to be of 60 seconds, and lacks a runtime setting". One
 * TIME_WAIT socket is watched until it leaves the kernel's table, with tcp_fin_timeout at its
 * default and at 5 s (the knob most often believed to shorten it), side by side.
 */
import { startServer } from '../harness.js';
import type { LifetimeResult } from '../probes/lifetime.js';
import type { Claim, Judgement } from '../types.js';
import { SEED0 } from './s0-common.js';

export interface S0_07Run extends LifetimeResult {
  tcpFinTimeout: string;
}

export interface S0_07Measured {
  claimedSeconds: number;
  runs: S0_07Run[];
}

/** Within this of the claimed 60 s counts as 60 s (the sampling interval plus scheduling). */
const TOLERANCE_MS = 1500;

export function judgeS0_07(m: S0_07Measured): Judgement {
  const claimed = m.claimedSeconds * 1000;
  const conditions = m.runs.map(
    (r) =>
      `tcp_fin_timeout=${r.tcpFinTimeout}: TIME_WAIT lasted ${r.observedLifetimeMs === null ? 'longer than the watch' : `${(r.observedLifetimeMs / 1000).toFixed(1)} s`} (timer ${r.timerAtFirstLookMs === null ? '?' : `${(r.timerAtFirstLookMs / 1000).toFixed(1)} s`} ${r.firstLookAfterMs} ms after close)`,
  );
  const at60 = (r: S0_07Run): boolean =>
    r.observedLifetimeMs !== null && Math.abs(r.observedLifetimeMs - claimed) <= TOLERANCE_MS;
  if (m.runs.length > 0 && m.runs.every(at60)) {
    return {
      verdict: 'confirmed',
      explanation: `TIME_WAIT lasted ${m.claimedSeconds} s in every run, whatever tcp_fin_timeout said: the length is the kernel's constant (TCP_TIMEWAIT_LEN), and tcp_fin_timeout does not shorten it.`,
      conditions,
    };
  }
  return {
    verdict: 'refuted',
    explanation: `TIME_WAIT did not last ${m.claimedSeconds} s in every run, so its length is not fixed at that value on this kernel: see the runs.`,
    conditions,
  };
}

export const s0_07: Claim<S0_07Measured> = {
  id: 'S0-07',
  claim: 'Linux hard-codes the TIME_WAIT length at 60 s, with no runtime setting to change it.',
  source: {
    seed: SEED0,
    where: 'comment 7 (Angel Olivera)',
    quote:
      'Linux hardcodes this timeout to be of 60 seconds, and lacks a runtime setting to control this value.',
  },
  estimateMs: 64_000,
  budgetMs: 100_000,
  async run(ctx) {
    const settings: Array<string | undefined> = [undefined, '5'];
    const runs = await Promise.all(
      settings.map(async (fin) => {
        const sb = await ctx.sandbox({
          hosts: 1,
          ...(fin ? { sysctls: { 'net.ipv4.tcp_fin_timeout': fin } } : {}),
        });
        const value = (await sb.client.readSysctl('net.ipv4.tcp_fin_timeout')) ?? 'absent';
        const server = await startServer(sb.server, { close: 'after-client', idleMs: 200 });
        ctx.progress('watching a TIME_WAIT socket until the kernel drops it (about a minute)');
        const r = await sb.client.call<LifetimeResult>('lab/probes/lifetime.js', 'timeWaitLifetime', [
          { to: { address: '127.0.0.1', port: server.port }, maxMs: 75_000, intervalMs: 100 },
        ]);
        await server.done;
        return { ...r, tcpFinTimeout: fin ? value : `${value} (default)` };
      }),
    );
    return { claimedSeconds: 60, runs };
  },
  judge: judgeS0_07,
};
