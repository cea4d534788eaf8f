/**
 * Seed-client measurements (runSeedClient's SeedMeasurement) for the S0 verdict tests, shaped like
 * the real ones (see test/lab/s0-experiments.test.ts for those).
 */
import type { SeedMeasurement } from '../../src/lab/harness.js';

/** The seed's client that ran out of ports at 100 of 100, its ports in TIME_WAIT. */
export function exhausted(over: Partial<SeedMeasurement> = {}): SeedMeasurement {
  return {
    hosts: 2,
    portRange: '40000-40099',
    ports: 100,
    settings: {},
    attempted: 101,
    succeeded: 100,
    failedAfter: 100,
    firstError: 'connect EADDRNOTAVAIL',
    connectionsPerSecond: 1000,
    localPortsUsed: 100,
    clientTimeWait: 100,
    serverTimeWait: 0,
    serverAppResets: 0,
    clientRstsSent: 0,
    serverEstabResets: 0,
    payloadsComplete: 100,
    payloadsIncomplete: 0,
    clientResetsSeen: 0,
    ...over,
  };
}

/** A run that never failed within 300 connections. */
export function survived(over: Partial<SeedMeasurement> = {}): SeedMeasurement {
  return exhausted({
    attempted: 300,
    succeeded: 300,
    failedAfter: null,
    firstError: null,
    clientTimeWait: 0,
    ...over,
  });
}
