/**
 * The model's NAT (src/model/nat.ts) against the kernel: the NAT rows of `npm run validate-model`
 * marked `fast` (scripts/validate-model.mjs NAT_GRID), each in its own 3-host sandbox with a real
 * nftables source NAT, the python client and server, and the model replaying the client's attempt
 * times for 1000 seeds. Counts the kernel does not draw at random (connections made, the first
 * failure, NAT ports used, entries left in TIME_WAIT, client ports kept) must be equal; the rest
 * (the first reused NAT port, collisions with the server's TIME_WAIT, stalls) must lie within the
 * model's range over its seeds, both sides from the same run's timings: if kernel and model draw
 * alike, one kernel draw falls outside the range of 1000 about once in 500 rows.
 */
import { expect, it } from 'vitest';
import { NAT_GRID, validateNat } from '../../scripts/validate-model.mjs';
import { describeNs, itNs } from '../helpers/sandbox.js';

describeNs('model vs kernel behind a NAT (fast NAT rows of the validation grid)', () => {
  const rows = NAT_GRID.filter((r) => r.fast);

  it('covers client-first and server-first, conntrack TIME_WAIT default and short, fully-random on and off, a pool held open', () => {
    expect(new Set(rows.map((r) => r.close))).toEqual(new Set(['client-first', 'server-first']));
    expect(rows.some((r) => r.ctTimeWait !== undefined)).toBe(true);
    expect(rows.some((r) => r.fullyRandom)).toBe(true);
    expect(rows.some((r) => r.hold)).toBe(true);
    expect(rows.some((r) => r.clientRange)).toBe(true);
  });

  for (const row of rows) {
    itNs(
      `${row.id}: ${row.what}`,
      async () => {
        const { results } = await validateNat([row]);
        const r = results[0]!;
        process.stderr.write(`${row.id}: kernel ${JSON.stringify(r.kernel)} ${r.verdict.notes.join('; ')}\n`);
        expect(r.verdict.notes, `${row.id} ${row.what}`).toEqual([]);
        // The row ran: every attempt got through the NAT or failed as the row expects.
        expect(r.kernel.attempted).toBeGreaterThan(0);
        if (row.hold) expect(r.kernel.failure).toMatch(/^ETIMEDOUT@/);
        if (row.close === 'server-first') expect(r.kernel.collisions).toBeGreaterThan(0);
      },
      90_000,
    );
  }
});
