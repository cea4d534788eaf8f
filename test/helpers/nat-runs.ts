/** Measurements of NAT churn runs for the N-* verdict rules' unit tests (test/lab/n-*.test.ts). */
import type { NatChurnRun } from '../../src/lab/claims/n-common.js';

/** A clean run: 200 of 200 through a 100-port NAT, nothing stalled; override what a case needs. */
export function natRun(over: Partial<NatChurnRun> = {}): NatChurnRun {
  return {
    pool: '40000-40099',
    poolSize: 100,
    fullyRandom: false,
    close: 'client-first',
    reuseConnection: false,
    concurrency: 1,
    conntrackTimeWaitS: '120',
    attempted: 200,
    succeeded: 200,
    firstError: null,
    failedAtIteration: null,
    stalls: 0,
    firstStall: null,
    maxLatencyMs: 3,
    beforeFailure: 200,
    beforeTrouble: 200,
    troubleFree: true,
    durationMs: 900,
    connectionsPerSecond: 220,
    natPortsUsed: 100,
    conntrackByState: { TIME_WAIT: 100 },
    conntrackTimeWaitMinLeftS: 117,
    insertFailed: 0,
    drop: 0,
    clientSynRetrans: 0,
    clientTimeWait: 200,
    serverTimeWait: 0,
    ...over,
  };
}

/** Server-first through the same NAT: every run stalls now and then once the pool went round. */
export function stalledRun(over: Partial<NatChurnRun> = {}): NatChurnRun {
  return natRun({
    close: 'server-first',
    stalls: 6,
    firstStall: { atIteration: 106, ms: 1036 },
    maxLatencyMs: 1100,
    beforeTrouble: 105,
    troubleFree: false,
    durationMs: 15_900,
    clientSynRetrans: 45,
    clientTimeWait: 0,
    serverTimeWait: 199,
    ...over,
  });
}

/** Stopped at the pool: the first failure at connection 101. */
export function failedAtPool(over: Partial<NatChurnRun> = {}): NatChurnRun {
  return natRun({
    attempted: 101,
    succeeded: 100,
    firstError: 'connect ETIMEDOUT',
    failedAtIteration: 101,
    beforeFailure: 100,
    beforeTrouble: 100,
    troubleFree: false,
    ...over,
  });
}
