/**
 * The model against the running kernel, fast subset of `npm run validate-model` (the rows marked
 * `fast` in scripts/validate-model.mjs): real sockets in sandbox hosts on one side, the model on
 * the other; count rows must agree exactly, time rows within 5%.
 */
import { expect, it } from 'vitest';
import { GRID, validate } from '../../scripts/validate-model.mjs';
import { describeNs } from '../helpers/sandbox.js';

describeNs('model vs kernel (fast subset of the validation grid)', () => {
  const rows = GRID.filter((r) => r.fast);

  it('has count rows and time rows, loopback and two hosts, bind-before-connect and not', () => {
    expect(new Set(rows.map((r) => r.kind))).toEqual(new Set(['count', 'time']));
    expect(new Set(rows.map((r) => r.hosts))).toEqual(new Set([1, 2]));
    // At least one row goes through twlab's own churn engine.
    expect(rows.some((r) => r.engine === 'churn')).toBe(true);
    expect(rows.some((r) => r.mode === 'bind-before-connect')).toBe(true);
  });

  // Once in four CI runs row A13f (tcp_max_tw_buckets=50, as fast as possible) saw the kernel fail
  // at connection 254 where the model and every other run never fail: one retry, said here.
  it('matches the kernel on every fast row', { timeout: 120_000, retry: 1 }, async () => {
    const { results } = await validate(rows);
    for (const r of results) {
      expect.soft(r.verdict.notes, `${r.row.id} ${r.row.what}`).toEqual([]);
      // A count row really ran into the port limit on the kernel side: EADDRNOTAVAIL from
      // connect(), or EADDRINUSE from bind(addr, 0) before connect().
      if (r.row.kind === 'count') {
        expect(r.kernel.first?.errno).toBe(
          r.row.mode === 'bind-before-connect' ? 'EADDRINUSE' : 'EADDRNOTAVAIL',
        );
      }
    }
  });
});
