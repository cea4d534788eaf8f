import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  LATENCY_BUCKETS,
  LatencyHistogram,
  PortSet,
  bucketLowUs,
  latencyBucket,
} from '../../src/traffic/churn-stats.js';

describe('latency histogram', () => {
  it('is exact below 1.024 ms', () => {
    for (const us of [0, 1, 2, 500, 1023]) expect(bucketLowUs(latencyBucket(us))).toBe(us);
  });

  it('keeps every value within 0.1% above its bucket low, buckets monotonic', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xfffffffe }), (us) => {
        const b = latencyBucket(us);
        expect(b).toBeGreaterThanOrEqual(0);
        expect(b).toBeLessThan(LATENCY_BUCKETS);
        const low = bucketLowUs(b);
        expect(low).toBeLessThanOrEqual(us);
        expect(us - low).toBeLessThanOrEqual(Math.max(0, low / 1024));
        expect(latencyBucket(us + 1)).toBeGreaterThanOrEqual(b);
      }),
    );
  });

  it('clamps negative, fractional and huge values', () => {
    expect(latencyBucket(-5)).toBe(0);
    expect(latencyBucket(3.7)).toBe(3);
    expect(latencyBucket(1e12)).toBe(latencyBucket(0xffffffff));
    expect(latencyBucket(1e12)).toBeLessThan(LATENCY_BUCKETS);
  });

  it('gives nearest-rank quantiles', () => {
    const h = new LatencyHistogram();
    expect(h.quantileUs(0.5)).toBe(0);
    for (let i = 1; i <= 100; i++) h.record(i);
    expect(h.quantileUs(0.5)).toBe(50);
    expect(h.quantileUs(0.99)).toBe(99);
    expect(h.quantileUs(1)).toBe(100);
    expect(h.maxUs).toBe(100);
    expect(new LatencyHistogram(h.counts).total).toBe(100);
  });
});

describe('port set', () => {
  it('counts distinct ports and their bounds', () => {
    const p = new PortSet();
    expect(p.bounds()).toBeNull();
    for (const port of [50000, 50001, 50000, 65535, 1]) p.add(port);
    expect(p.size).toBe(4);
    expect(p.bounds()).toEqual({ low: 1, high: 65535 });
    expect(new PortSet(p.seen).size).toBe(4);
  });
});
