/** S0-05: using UDP instead avoids the problem (comments 2 and 6). */
import { errorText, runUdp, SMALL_RANGE, rangeSize } from '../harness.js';
import type { Claim, Judgement } from '../types.js';
import { SEED0 } from './s0-common.js';

export interface S0_05Measured {
  ports: number;
  messagesAttempted: number;
  messagesSent: number;
  firstError: string | null;
  messagesPerSecond: number;
  localPortsUsed: number;
  datagramsReceived: number;
  datagramsLost: number;
  clientTimeWait: number;
}

function judgeS0_05(m: S0_05Measured): Judgement {
  const conditions = [
    `${m.messagesSent} of ${m.messagesAttempted} datagrams sent from a fresh socket each on ${m.ports} ports, ${m.datagramsReceived} received (${m.datagramsLost} lost)`,
  ];
  if (
    m.firstError === null &&
    m.messagesSent === m.messagesAttempted &&
    m.messagesSent > m.ports &&
    m.clientTimeWait === 0
  ) {
    return {
      verdict: 'confirmed',
      explanation: `UDP has no connection to tear down: ${m.messagesSent} sends from fresh sockets (${m.messagesSent / m.ports}x the port range) never failed and left no TIME_WAIT; what UDP gives up is delivery (${m.datagramsLost} datagrams lost here) and ordering.`,
      conditions,
    };
  }
  return {
    verdict: 'refuted',
    explanation: `UDP also failed: ${m.firstError ?? `only ${m.messagesSent} of ${m.messagesAttempted} sent`}.`,
    conditions,
  };
}

export const claim: Claim<S0_05Measured> = {
  id: 'S0-05',
  claim: 'Using UDP instead of TCP avoids the problem.',
  source: {
    seed: SEED0,
    where: 'comments 2 (John Hughes) and 6 (Casper)',
    quote: 'You could consider using UDP, not TCP.',
  },
  estimateMs: 1_500,
  async run(ctx) {
    const count = rangeSize(SMALL_RANGE) * 3;
    const r = await runUdp(ctx, { hosts: 2, count });
    return {
      ports: r.ports,
      messagesAttempted: r.client.attempted,
      messagesSent: r.client.succeeded,
      firstError: errorText(r.client.firstError),
      messagesPerSecond: Math.round(r.client.perSecond),
      localPortsUsed: r.client.localPortsUsed,
      datagramsReceived: r.server.datagrams,
      datagramsLost: r.client.succeeded - r.server.datagrams,
      clientTimeWait: r.clientTimeWait,
    };
  },
  judge: judgeS0_05,
};
