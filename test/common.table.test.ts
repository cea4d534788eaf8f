/** The generic terminal table: alignment, wrapping at word boundaries, multi-line rows. */
import { describe, expect, it } from 'vitest';
import { renderTable, wrapText } from '../src/common/table.js';

describe('wrapText', () => {
  it('wraps at spaces, never exceeding the width, and cuts words longer than the width', () => {
    expect(wrapText('one two three four', 9)).toEqual(['one two', 'three', 'four']);
    expect(wrapText('abcdefghij', 4)).toEqual(['abcd', 'efgh', 'ij']);
    expect(wrapText('', 5)).toEqual(['']);
    for (const l of wrapText('a bb ccc dddd eeeee ffffff', 6)) expect(l.length).toBeLessThanOrEqual(6);
  });
});

describe('renderTable', () => {
  it('aligns columns, right-aligns numbers, wraps long cells onto continuation lines', () => {
    const out = renderTable<{ name: string; n: number }>(
      [
        { header: 'name', value: (r) => r.name, maxWidth: 8 },
        { header: 'count', value: (r) => String(r.n), align: 'right' },
      ],
      [
        { name: 'short', n: 5 },
        { name: 'a much longer name', n: 1000 },
      ],
    );
    // The column is as wide as its widest wrapped line ('a much', 'longer'), not maxWidth.
    expect(out).toBe(
      ['name    count', '------  -----', 'short       5', 'a much   1000', 'longer', 'name', ''].join('\n'),
    );
  });

  it('an empty table is its header and rule', () => {
    expect(renderTable([{ header: 'x', value: () => '' }], [])).toBe('x\n-\n');
  });
});
