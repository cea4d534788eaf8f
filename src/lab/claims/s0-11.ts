/**
 * S0-11: "SO_REUSEADDR ... allows multiple instances of the server to listen on the same port"
 * (comment 7). Two listeners on one port with SO_REUSEADDR, then with SO_REUSEPORT.
 */
import type { TwoListenersResult } from '../probes/listeners.js';
import { LISTENERS, remote } from '../probes/remote.js';
import type { Claim, Judgement } from '../types.js';
import { SEED0 } from './s0-common.js';

export interface S0_11Measured {
  reuseAddr: TwoListenersResult;
  reusePort: TwoListenersResult;
}

function line(name: string, r: TwoListenersResult): string {
  const spread =
    r.acceptedByFirst === null
      ? ''
      : `; of ${r.connections} connections the first accepted ${r.acceptedByFirst}, the second ${r.acceptedBySecond}`;
  return `${name}: first listen ${r.firstListen}, second listen ${r.secondListen}${spread}`;
}

function judgeS0_11(m: S0_11Measured): Judgement {
  const conditions = [line('SO_REUSEADDR', m.reuseAddr), line('SO_REUSEPORT', m.reusePort)];
  if (m.reuseAddr.secondListen === 'ok') {
    return {
      verdict: 'confirmed',
      explanation: 'A second server listened on the same port with SO_REUSEADDR.',
      conditions,
    };
  }
  const portWorks = m.reusePort.secondListen === 'ok';
  return {
    verdict: 'refuted',
    explanation: `With SO_REUSEADDR the second server got ${m.reuseAddr.secondListen}: SO_REUSEADDR lets a server bind over TIME_WAIT sockets, not next to a live listener.${portWorks ? ' SO_REUSEPORT is the option that lets several listeners share a port (and the kernel spread the connections between them).' : ''}`,
    conditions,
  };
}

export const claim: Claim<S0_11Measured> = {
  id: 'S0-11',
  claim: 'SO_REUSEADDR lets several instances of a server listen on the same port.',
  source: {
    seed: SEED0,
    where: 'comment 7 (Angel Olivera)',
    quote: 'it allows, among other things, multiple instances of the server to listen on the same port',
  },
  estimateMs: 1_000,
  async run(ctx) {
    const sb = await ctx.sandbox({ hosts: 1 });
    const call = (o: { reuseAddr: boolean; reusePort: boolean }): Promise<TwoListenersResult> =>
      remote(sb.server, LISTENERS).twoListeners({ port: 12347, connections: 40, ...o });
    const reuseAddr = await call({ reuseAddr: true, reusePort: false });
    const reusePort = await call({ reuseAddr: false, reusePort: true });
    return { reuseAddr, reusePort };
  },
  judge: judgeS0_11,
};
