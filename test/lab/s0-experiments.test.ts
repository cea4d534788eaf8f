/**
 * The real S0 experiments, in real sandboxes, through the runner exactly as `twlab lab` runs them.
 * The expected verdicts are those of any Linux since 4.12 (no tcp_tw_recycle, 32768-60999 as the
 * default range); a kernel that behaves otherwise fails here, which is the point: the report would
 * then say something else and a reader should look.
 */
import { release } from 'node:os';
import { expect, it } from 'vitest';
import { runClaimsExpecting } from '../helpers/lab.js';
import { describeNs } from '../helpers/sandbox.js';

const EXPECTED: Record<string, string> = {
  'S0-01': 'confirmed',
  'S0-02': 'refuted',
  'S0-03': 'confirmed',
  'S0-04': 'confirmed',
  'S0-05': 'confirmed',
  'S0-06': 'confirmed',
  'S0-07': 'confirmed',
  'S0-08': 'not-applicable',
  'S0-09': 'refuted',
  'S0-10': 'refuted',
  'S0-11': 'refuted',
};

describeNs('S0 claims on this kernel', () => {
  it('every S0 experiment runs, records its settings, and reaches the verdict its measurements support', async () => {
    const results = await runClaimsExpecting(['S0-'], EXPECTED);
    for (const r of results) {
      expect(r.evidence['kernel']).toBe(release());
      expect(Array.isArray(r.evidence['sysctlsSet'])).toBe(true);
    }
    // The seed's client with tcp_tw_reuse=0 on loopback: out of ports at the port count, all in TIME_WAIT.
    const s01 = results.find((r) => r.id === 'S0-01')!.evidence['scenarios'] as Array<{
      twReuse: number;
      where: string;
      failedAfter: number;
      clientTimeWait: number;
      ports: number;
    }>;
    const seed = s01.find((s) => s.twReuse === 0 && s.where === 'loopback')!;
    expect(seed.failedAfter).toBe(seed.ports);
    expect(seed.clientTimeWait).toBe(seed.ports);
    expect(results.find((r) => r.id === 'S0-08')!.evidence['sysctlsSet']).toContain(
      'net.ipv4.tcp_tw_recycle=1 (not-present)',
    );
  }, 150_000);
});
