/**
 * docs/lab.schema.json accepts the lab's document and rejects the ways it could break (a real
 * run is validated in lab-cli.test.ts).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Ajv } from 'ajv';

const schema = JSON.parse(
  readFileSync(new URL('../../docs/lab.schema.json', import.meta.url), 'utf8'),
) as object;
const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);

describe('lab.schema.json', () => {
  it('rejects documents that break the contract', () => {
    const claim = {
      id: 'S0-02',
      claim: 'c',
      source: { seed: 's', where: 'w', quote: 'q' },
      verdict: 'confirmed',
      evidence: { kernel: 'k', sysctlsSet: [] },
      conditions: [],
      explanation: 'e',
      durationMs: 1,
      series: [],
    };
    const doc = {
      kernel: 'k',
      startedAt: new Date().toISOString(),
      durationMs: 1,
      claims: [claim],
      fixes: [],
    };
    expect(validate(doc)).toBe(true);
    expect(validate({ ...doc, claims: [{ ...claim, verdict: 'maybe' }] })).toBe(false);
    expect(validate({ ...doc, claims: [{ ...claim, evidence: {} }] })).toBe(false);
    expect(validate({ ...doc, claims: [{ ...claim, error: 'boom' }] })).toBe(false);
    expect(validate({ ...doc, kernel: undefined })).toBe(false);
    expect(validate({ ...doc, startedAt: 'yesterday' })).toBe(false);
    // The NAT family: N-01... with a field source (the page's address in `where`).
    const nat = {
      ...claim,
      id: 'N-03',
      source: { seed: 'NAT (field sources)', where: 'KB 2596065, https://example.org/kb', quote: 'q' },
    };
    expect(validate({ ...doc, claims: [claim, nat] })).toBe(true);
    expect(validate({ ...doc, claims: [{ ...nat, id: 'N-3' }] })).toBe(false);
    expect(validate({ ...doc, claims: [{ ...nat, id: 'X-03' }] })).toBe(false);
  });

  it('fixes: null means no failure within the bound; anything else is a count', () => {
    const fix = {
      id: 'none',
      name: 'n',
      source: 's',
      connectionsBeforeFailure: null,
      attempted: 1000,
      connectionsPerSecond: 12.5,
      firstError: null,
      costs: { clientTimeWait: 0, payloadLost: 'none', ok: true },
      note: 'x',
    };
    const doc = {
      kernel: 'k',
      startedAt: '2026-01-01T00:00:00.000Z',
      durationMs: 1,
      claims: [],
      fixes: [fix],
    };
    expect(validate(doc)).toBe(true);
    expect(
      validate({
        ...doc,
        fixes: [{ ...fix, connectionsBeforeFailure: 100, firstError: 'connect EADDRNOTAVAIL' }],
      }),
    ).toBe(true);
    expect(validate({ ...doc, fixes: [{ ...fix, connectionsBeforeFailure: -1 }] })).toBe(false);
    expect(validate({ ...doc, fixes: [{ ...fix, costs: { a: [1] } }] })).toBe(false);
  });
});
