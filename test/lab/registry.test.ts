/**
 * The ledger's registry: every claim file is listed exactly once, in id order, and exports a claim
 * whose id is its file name (so adding a claim is its file plus one registry line, and forgetting
 * the line fails here), and has its own test file.
 */
import { existsSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CLAIMS } from '../../src/lab/registry.js';

const all = readdirSync(new URL('../../src/lab/claims/', import.meta.url));
// The seeds' families first (S0, S1, S2), then the NAT family (N-), each in id order.
const files = [
  ...all.filter((f) => /^s\d-\d\d\.ts$/.test(f)).sort(),
  ...all.filter((f) => /^n-\d\d\.ts$/.test(f)).sort(),
];

describe('claim registry', () => {
  it('lists every claim file once, in id order, each exporting the claim of its name', () => {
    expect(CLAIMS.map((c) => `${c.id.toLowerCase()}.ts`)).toEqual(files);
  });

  it('every claim has its own test file, test/lab/<id>.test.ts', () => {
    for (const c of CLAIMS) {
      expect(existsSync(new URL(`./${c.id.toLowerCase()}.test.ts`, import.meta.url))).toBe(true);
    }
  });

  it('every claim has a source (a seed file, or for the NAT family a page with its address), an estimate and a verdict rule', () => {
    for (const c of CLAIMS) {
      if (c.id.startsWith('N-')) {
        expect(c.source.seed).toBe('NAT (field sources)');
        expect(c.source.where).toMatch(/https:\/\/\S+/);
        expect(c.source.quote.length).toBeGreaterThan(20);
      } else expect(c.source.seed).toMatch(/^\d{3}_[0-9a-f]{16}\.txt$/);
      expect(c.estimateMs).toBeGreaterThan(0);
      expect(typeof c.judge).toBe('function');
    }
  });
});
