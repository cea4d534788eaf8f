/**
 * S2-05: "SO_REUSEADDR only works when tcp_timestamps is 1". The S1-05 experiment (the server
 * closes first, then binds its port again) with tcp_timestamps 0 and 1, the old and the new
 * listener both with SO_REUSEADDR, as the seed's server sets it.
 */
import type { Claim, Judgement } from '../types.js';
import type { Sandbox } from '../../sandbox/types.js';
import { closeInOrder, tryRebind, type RebindOutcome } from '../probes/scenarios.js';

export interface TimestampRebind extends RebindOutcome {
  timestamps: number;
}

export interface S2_05Measured {
  runs: TimestampRebind[];
}

const PORT = 5251;

async function rebind(sb: Sandbox, timestamps: number): Promise<TimestampRebind> {
  await closeInOrder(sb, PORT, 'server', { listener: { reuseAddr: true } });
  return { timestamps, ...(await tryRebind(sb.server, PORT)) };
}

export const claim: Claim<S2_05Measured> = {
  id: 'S2-05',
  claim: 'SO_REUSEADDR only works when tcp_timestamps is 1.',
  source: {
    seed: '002_2dbb6b03cd31f3e6.txt',
    where: 'sixth bullet',
    quote: 'SO_REUSEADDR 生效的前提条件是开启时间戳,即令 /proc/sys/net/ipv4/tcp_timestamps 为 1',
  },
  estimateMs: 3000,
  async run(ctx) {
    ctx.progress('re-bind with tcp_timestamps 0 and 1');
    const sbs = await Promise.all(
      [0, 1].map((v) => ctx.sandbox({ hosts: 2, sysctls: { tcp_timestamps: v } })),
    );
    const runs = await Promise.all(sbs.map((sb, i) => rebind(sb, i)));
    return { runs };
  },
  judge(m): Judgement {
    const say = (r: TimestampRebind): string =>
      `tcp_timestamps=${r.timestamps}: ${r.timeWaitOnPort} TIME_WAIT on the port, bind without SO_REUSEADDR ${r.bindWithout}, with it ${r.bindWith}`;
    const text = m.runs.map(say).join('; ');
    if (m.runs.some((r) => r.timeWaitOnPort === 0)) {
      return { verdict: 'not-tested', explanation: `No TIME_WAIT on the port to re-bind over: ${text}.` };
    }
    const off = m.runs.find((r) => r.timestamps === 0);
    const on = m.runs.find((r) => r.timestamps === 1);
    if (!off || !on) return { verdict: 'not-tested', explanation: `Both settings are needed: ${text}.` };
    if (on.bindWith === 'ok' && off.bindWith !== 'ok')
      return { verdict: 'confirmed', explanation: `${text}.` };
    if (off.bindWith === 'ok') {
      return { verdict: 'refuted', explanation: `SO_REUSEADDR works with timestamps off too: ${text}.` };
    }
    return {
      verdict: 'refuted',
      explanation: `SO_REUSEADDR did not work with timestamps on either: ${text}.`,
    };
  },
};
