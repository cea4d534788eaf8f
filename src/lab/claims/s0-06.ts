/** S0-06: keeping the connection open and framing messages avoids the problem (comment 5). */
import { runKeepOpen, states, SMALL_RANGE, rangeSize } from '../harness.js';
import type { Claim, Judgement } from '../types.js';
import { SEED0 } from './s0-common.js';

export interface S0_06Measured {
  ports: number;
  messagesAttempted: number;
  messagesSent: number;
  messagesReceived: number;
  firstError: string | null;
  messagesPerSecond: number;
  localPortsUsed: number;
  clientTimeWaitAfterClose: number;
}

function judgeS0_06(m: S0_06Measured): Judgement {
  const conditions = [
    `${m.messagesSent} framed messages on ${m.localPortsUsed} connection(s), ${m.messagesReceived} read by the server, range of ${m.ports} ports`,
  ];
  if (
    m.firstError === null &&
    m.messagesSent === m.messagesAttempted &&
    m.messagesReceived === m.messagesSent &&
    m.localPortsUsed === 1 &&
    m.messagesSent > m.ports
  ) {
    return {
      verdict: 'confirmed',
      explanation: `One connection carried all ${m.messagesSent} messages (${m.messagesSent / m.ports}x the port range) with a 4-byte length prefix; it used one port and left at most ${m.clientTimeWaitAfterClose} socket in TIME_WAIT when finally closed.`,
      conditions,
    };
  }
  return {
    verdict: 'refuted',
    explanation: `Keeping one connection open did not carry every message: ${m.firstError ?? `${m.messagesReceived} of ${m.messagesAttempted} arrived`}.`,
    conditions,
  };
}

export const claim: Claim<S0_06Measured> = {
  id: 'S0-06',
  claim: 'Keeping the connection open and framing the messages avoids the problem.',
  source: {
    seed: SEED0,
    where: 'comment 5 (Bastian)',
    quote:
      'Maybe should simply leave the connection open and reuse it and don’t open a new one for every single message',
  },
  estimateMs: 1_500,
  async run(ctx) {
    const count = rangeSize(SMALL_RANGE) * 3;
    const { sb, client, firstError, messagesReceived } = await runKeepOpen(ctx, count);
    const table = await states(sb.client);
    return {
      ports: rangeSize(SMALL_RANGE),
      messagesAttempted: count,
      messagesSent: client.succeeded,
      messagesReceived,
      firstError,
      messagesPerSecond: Math.round(client.perSecond),
      localPortsUsed: client.localPortsUsed,
      clientTimeWaitAfterClose: table.timeWait,
    };
  },
  judge: judgeS0_06,
};
