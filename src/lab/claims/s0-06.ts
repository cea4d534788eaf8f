/** S0-06: keeping the connection open and framing messages avoids the problem (comment 5). */
import { keepOpen, startServer, states, SMALL_RANGE, rangeSize, type ClientResult } from '../harness.js';
import type { Sandbox } from '../../sandbox/types.js';
import type { Claim, Judgement, LabContext } from '../types.js';
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

/** What one keep-open run measured; the server has finished, so tables read after are final. */
export interface KeepOpenRun {
  sb: Sandbox;
  client: ClientResult;
  /** "syscall ERRNO" of the client's first failure, or null. */
  firstError: string | null;
  /** Framed messages the server read. */
  messagesReceived: number;
}

/**
 * The experiment, also the fixes table's keep-open row: 2 hosts, 100 ports, tcp_tw_reuse=0, one
 * connection carrying `count` length-prefixed messages to a framed server.
 */
export async function runKeepOpen(ctx: LabContext, count: number): Promise<KeepOpenRun> {
  const sb = await ctx.sandbox({
    hosts: 2,
    portRange: SMALL_RANGE,
    sysctls: { 'net.ipv4.tcp_tw_reuse': 0 },
  });
  const server = await startServer(sb.server, { close: 'framed' });
  const client = await keepOpen(sb.client, {
    to: { address: sb.server.address, port: server.port },
    count,
    maxMs: 20_000,
  });
  const stats = await server.finish();
  return {
    sb,
    client,
    firstError: client.firstError ? `${client.firstError.syscall} ${client.firstError.errno}` : null,
    messagesReceived: stats.framedMessages,
  };
}

export function judgeS0_06(m: S0_06Measured): Judgement {
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

export const s0_06: Claim<S0_06Measured> = {
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
