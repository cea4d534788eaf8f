/**
 * S0-09: "always close your connection at the client first" avoids TIME_WAIT (comment 9; comment
 * 10 disagrees). Both orders are run across two hosts and both hosts' tables are read.
 */
import { runSeedClient, type SeedMeasurement } from '../harness.js';
import type { Claim, Judgement } from '../types.js';
import { SEED0 } from './s0-common.js';

export interface S0_09Measured {
  connections: number;
  clientClosesFirst: SeedMeasurement;
  serverClosesFirst: SeedMeasurement;
}

function judgeS0_09(m: S0_09Measured): Judgement {
  const c = m.clientClosesFirst;
  const s = m.serverClosesFirst;
  const conditions = [
    `client closes first: ${c.clientTimeWait} TIME_WAIT on the client, ${c.serverTimeWait} on the server (${c.succeeded} connections)`,
    `server closes first: ${s.clientTimeWait} TIME_WAIT on the client, ${s.serverTimeWait} on the server (${s.succeeded} connections from ${s.localPortsUsed} client ports)`,
  ];
  if (c.clientTimeWait + c.serverTimeWait === 0 && c.succeeded > 0) {
    return {
      verdict: 'confirmed',
      explanation: 'Closing at the client first left no socket in TIME_WAIT on either host.',
      conditions,
    };
  }
  // With the server closing first, the client's ports are free again at once and 4-tuples repeat:
  // the server holds one TIME_WAIT per distinct client port.
  const moved =
    c.clientTimeWait >= 0.9 * c.succeeded &&
    s.clientTimeWait === 0 &&
    s.serverTimeWait >= 0.9 * s.localPortsUsed;
  return {
    verdict: 'refuted',
    explanation: moved
      ? `Closing first does not avoid TIME_WAIT, it takes it: with the client closing first the client held ${c.clientTimeWait} TIME_WAIT sockets; with the server closing first the server held ${s.serverTimeWait}. Whoever closes first gets it.`
      : `Closing at the client first still left ${c.clientTimeWait + c.serverTimeWait} sockets in TIME_WAIT.`,
    conditions,
  };
}

export const claim: Claim<S0_09Measured> = {
  id: 'S0-09',
  claim: 'Closing the connection at the client first, before the server, avoids TIME_WAIT.',
  source: {
    seed: SEED0,
    where: 'comment 9 (wenlong)',
    quote:
      'To avoid connections staying in TIME_WAIT status, always close your connection at the client first',
  },
  estimateMs: 2_000,
  async run(ctx) {
    // Fewer connections than ports, so neither order runs out and the counts compare directly.
    const connections = 50;
    const base = { hosts: 2 as const, count: connections, sysctls: { 'net.ipv4.tcp_tw_reuse': 0 } };
    const [clientClosesFirst, serverClosesFirst] = await Promise.all([
      runSeedClient(ctx, { ...base, client: { close: 'client-first' } }),
      runSeedClient(ctx, { ...base, client: { close: 'server-first' } }),
    ]);
    return { connections, clientClosesFirst, serverClosesFirst };
  },
  judge: judgeS0_09,
};
