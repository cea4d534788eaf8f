/**
 * S0-04: SO_LINGER {on, 0} on the client avoids TIME_WAIT (comments 2 and 3). Measured across two
 * hosts so the server's side is seen apart: does the client still fail, is any socket left in
 * TIME_WAIT, what did the server see (resets), did the payload arrive.
 */
import { runSeedClient, SMALL_RANGE, rangeSize, type SeedMeasurement } from '../harness.js';
import type { Claim, Judgement } from '../types.js';
import { SEED0, outcome } from './s0-common.js';

export interface S0_04Measured {
  lingerOff: SeedMeasurement;
  /** SO_LINGER {1,0}, then close() alone: the abortive close as it is normally used. */
  lingerZero: SeedMeasurement;
  /** SO_LINGER {1,0} on the seed's code as written: shutdown(SHUT_RDWR), then close(). */
  lingerZeroAfterShutdown: SeedMeasurement;
}

function judgeS0_04(m: S0_04Measured): Judgement {
  const z = m.lingerZero;
  const total = z.payloadsComplete + z.payloadsIncomplete;
  const conditions = [
    `linger off (the seed): ${outcome(m.lingerOff)}, ${m.lingerOff.clientTimeWait} client sockets in TIME_WAIT`,
    `linger {1,0}: ${outcome(z)}, ${z.clientTimeWait} client / ${z.serverTimeWait} server sockets in TIME_WAIT`,
    `cost: the client's kernel sent ${z.clientRstsSent} RSTs for ${z.attempted} connections; the server's kernel counted ${z.serverEstabResets} established connections reset, its application saw ${z.serverAppResets} ECONNRESET`,
    `payload: ${z.payloadsComplete} of ${total} connections delivered the whole payload before the reset`,
    `with the seed's shutdown() before the close: ${outcome(m.lingerZeroAfterShutdown)}, ${m.lingerZeroAfterShutdown.clientTimeWait} client sockets in TIME_WAIT (the server's FIN can arrive between shutdown and close)`,
  ];
  if (z.failedAfter === null && z.clientTimeWait === 0 && z.serverTimeWait === 0) {
    return {
      verdict: 'confirmed',
      explanation: `With SO_LINGER {1,0} close() aborted each connection with a RST (${z.clientRstsSent} sent for ${z.attempted} connections): no socket entered TIME_WAIT and the client ran all ${z.attempted} connections on ${z.ports} ports. ${z.payloadsIncomplete === 0 ? 'Every payload still arrived (it was sent before the reset)' : `${z.payloadsIncomplete} payloads were lost`}; the server's application saw ${z.serverAppResets} resets${z.serverAppResets === 0 ? ' (the RST reached sockets it had already finished with)' : ''}.`,
      conditions,
    };
  }
  return {
    verdict: 'refuted',
    explanation: `With SO_LINGER {1,0} the client still ${outcome(z)} and ${z.clientTimeWait + z.serverTimeWait} sockets were in TIME_WAIT.`,
    conditions,
  };
}

export const claim: Claim<S0_04Measured> = {
  id: 'S0-04',
  claim: 'Setting SO_LINGER {on, 0} on the client closes the connection at once and avoids TIME_WAIT.',
  source: {
    seed: SEED0,
    where: 'comments 2 (John Hughes) and 3 (Michael)',
    quote:
      'setting SO_LINGER will make sure the connection will be closed immediately and not hang around in the TIME_WAIT state',
  },
  estimateMs: 2_500,
  async run(ctx) {
    const count = rangeSize(SMALL_RANGE) * 3;
    const base = { hosts: 2 as const, sysctls: { 'net.ipv4.tcp_tw_reuse': 0 }, count };
    const [lingerOff, lingerZero, lingerZeroAfterShutdown] = await Promise.all([
      runSeedClient(ctx, { ...base, client: { linger: 'off' } }),
      runSeedClient(ctx, { ...base, client: { linger: 0, shutdownFirst: false } }),
      runSeedClient(ctx, { ...base, client: { linger: 0 } }),
    ]);
    return { lingerOff, lingerZero, lingerZeroAfterShutdown };
  },
  judge: judgeS0_04,
};
