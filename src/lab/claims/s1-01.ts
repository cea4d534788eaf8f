/**
 * S1-01: only the side that closes first goes through TIME_WAIT. Measured both ways round on two
 * hosts, reading both hosts' tables once the close has settled.
 */
import type { Claim, Judgement } from '../types.js';
import type { Sandbox } from '../../sandbox/types.js';
import { closeInOrder } from '../probes/scenarios.js';

export interface CloseOrderOutcome {
  /** The connection's states on each host after the close (empty: no socket left). */
  clientStates: string[];
  serverStates: string[];
}

export interface S1_01Measured {
  clientClosesFirst: CloseOrderOutcome;
  serverClosesFirst: CloseOrderOutcome;
}

const tw = (states: string[]): boolean => states.includes('TIME_WAIT');

export const claim: Claim<S1_01Measured> = {
  id: 'S1-01',
  claim: 'The side that closes first goes through TIME_WAIT; the other side does not.',
  source: {
    seed: '001_f645a441ee13af30.txt',
    where: 'English article, "Normal Closure"',
    quote: 'if you initiate closure, there is a TIME_WAIT state that is absent from the other side',
  },
  estimateMs: 4000,
  async run(ctx) {
    const sbs: Sandbox[] = [];
    const one = async (first: 'client' | 'server'): Promise<CloseOrderOutcome> => {
      const sb = await ctx.sandbox({ hosts: 2 });
      sbs.push(sb);
      const r = await closeInOrder(sb, 5001, first);
      return { clientStates: r.clientStates, serverStates: r.serverStates };
    };
    ctx.progress('client closes first / server closes first');
    const [clientClosesFirst, serverClosesFirst] = await Promise.all([one('client'), one('server')]);
    return { clientClosesFirst, serverClosesFirst };
  },
  judge(m): Judgement {
    const a = m.clientClosesFirst;
    const b = m.serverClosesFirst;
    const closerTw = tw(a.clientStates) && tw(b.serverStates);
    const otherClean = !tw(a.serverStates) && !tw(b.clientStates);
    const fmt = (s: string[]): string => (s.length ? s.join('+') : 'no socket');
    const text =
      `client first: client ${fmt(a.clientStates)}, server ${fmt(a.serverStates)}; ` +
      `server first: server ${fmt(b.serverStates)}, client ${fmt(b.clientStates)}.`;
    if (closerTw && otherClean)
      return { verdict: 'confirmed', explanation: `Only the first closer held TIME_WAIT: ${text}` };
    return { verdict: 'refuted', explanation: `TIME_WAIT did not follow the first closer alone: ${text}` };
  },
};
