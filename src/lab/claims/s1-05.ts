/**
 * S1-05: SO_REUSEADDR lets a server bind a port that still has connections in TIME_WAIT. The
 * server closes first (so the TIME_WAIT is on its port), then a new socket binds the port without
 * and with SO_REUSEADDR. Done twice: the old listener (whose accepted socket became the TIME_WAIT)
 * without and with SO_REUSEADDR, since the kernel compares the option on both sockets.
 */
import type { Claim, Judgement } from '../types.js';
import { closeInOrder, tryRebind, type RebindOutcome } from '../probes/scenarios.js';

export interface S1_05Measured {
  /** The listener that made the connection (so the TIME_WAIT socket) had SO_REUSEADDR off / on. */
  originWithout: RebindOutcome;
  originWith: RebindOutcome;
}

/** Does SO_REUSEADDR let the bind through, and does the old socket's option matter? */
export function judgeRebind(originWithout: RebindOutcome, originWith: RebindOutcome, what = ''): Judgement {
  const say = (o: RebindOutcome, origin: string): string =>
    `old listener ${origin} SO_REUSEADDR, ${o.timeWaitOnPort} TIME_WAIT on the port: bind without the option ${o.bindWithout}, with it ${o.bindWith}`;
  const text = `${what}${say(originWithout, 'without')}; ${say(originWith, 'with')}`;
  if (originWithout.timeWaitOnPort === 0 || originWith.timeWaitOnPort === 0) {
    return { verdict: 'not-tested', explanation: `No TIME_WAIT was left on the port: ${text}.` };
  }
  const works = (o: RebindOutcome): boolean => o.bindWith === 'ok';
  const needed = (o: RebindOutcome): boolean => o.bindWithout !== 'ok';
  if (!needed(originWithout) || !needed(originWith)) {
    return {
      verdict: 'refuted',
      explanation: `A plain bind already succeeded, SO_REUSEADDR was not needed: ${text}.`,
    };
  }
  if (works(originWithout) && works(originWith)) return { verdict: 'confirmed', explanation: `${text}.` };
  if (!works(originWithout) && !works(originWith)) {
    return { verdict: 'refuted', explanation: `SO_REUSEADDR never let the bind through: ${text}.` };
  }
  return {
    verdict: 'depends',
    explanation: `Linux lets the bind through only when both the new socket and the one that left the TIME_WAIT had SO_REUSEADDR: ${text}.`,
    conditions: [
      `old socket without SO_REUSEADDR: bind with it ${originWithout.bindWith}`,
      `old socket with SO_REUSEADDR: bind with it ${originWith.bindWith}`,
    ],
  };
}

export const claim: Claim<S1_05Measured> = {
  id: 'S1-05',
  claim: 'SO_REUSEADDR lets a server bind a port that has connections in TIME_WAIT.',
  source: {
    seed: '001_f645a441ee13af30.txt',
    where: 'English article, "SO_REUSEADDR"',
    quote: 'explicitly allows a process to bind to a port which remains in TIME_WAIT',
  },
  estimateMs: 3000,
  async run(ctx) {
    const sb = await ctx.sandbox({ hosts: 2 });
    ctx.progress('server closes first, then re-binds');
    await closeInOrder(sb, 5051, 'server', { listener: { reuseAddr: false } });
    await closeInOrder(sb, 5052, 'server', { listener: { reuseAddr: true } });
    return {
      originWithout: await tryRebind(sb.server, 5051),
      originWith: await tryRebind(sb.server, 5052),
    };
  },
  judge(m): Judgement {
    return judgeRebind(m.originWithout, m.originWith);
  },
};
