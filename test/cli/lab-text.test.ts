/** The lab's text report: claim blocks with their evidence, the summary, the fixes table. */
import { describe, expect, it } from 'vitest';
import { renderLabReport } from '../../src/cli/lab-text.js';
import { formatValue } from '../../src/report/evidence.js';
import type { LabReport } from '../../src/lab/types.js';

const report: LabReport = {
  kernel: '6.18.0',
  startedAt: '2026-01-01T00:00:00.000Z',
  durationMs: 75_000,
  claims: [
    {
      id: 'S0-03',
      claim: 'Setting SO_REUSEADDR on the client makes no difference.',
      source: { seed: '000_x.txt', where: 'comment 5', quote: 'no effect' },
      verdict: 'confirmed',
      evidence: {
        kernel: '6.18.0',
        sysctlsSet: ['net.ipv4.tcp_tw_reuse=0'],
        withReuseAddr: { failedAfter: 100, firstError: 'connect EADDRNOTAVAIL', settings: { hidden: 1 } },
      },
      conditions: ['with SO_REUSEADDR: failed after 100 connections'],
      explanation: 'Same failure either way.',
      durationMs: 2_000,
      series: [],
    },
  ],
  fixes: [
    {
      id: 'linger0',
      name: 'SO_LINGER {1,0}',
      source: 's',
      connectionsBeforeFailure: null,
      attempted: 1000,
      connectionsPerSecond: 171.4,
      firstError: null,
      costs: { clientRstsSent: 1000 },
      note: 'every close is a RST',
    },
    {
      id: 'udp',
      name: 'UDP',
      source: 's',
      connectionsBeforeFailure: null,
      attempted: 0,
      connectionsPerSecond: 0,
      firstError: null,
      costs: {},
      note: 'not measured: boom',
      error: 'boom',
    },
  ],
};

describe('renderLabReport', () => {
  const text = renderLabReport(report);
  it('a block per claim: verdict, source, evidence (nested measurements by their key fields), conditions, why', () => {
    expect(text).toContain('S0-03  CONFIRMED  (2.0 s)');
    expect(text).toContain('000_x.txt, comment 5: "no effect"');
    expect(text).toContain('sysctlsSet = [net.ipv4.tcp_tw_reuse=0]');
    expect(text).toContain('withReuseAddr = {failedAfter: 100, firstError: connect EADDRNOTAVAIL}');
    expect(text).not.toContain('hidden');
    expect(text).toContain('- with SO_REUSEADDR: failed after 100 connections');
    expect(text).toContain('why         Same failure either way.');
  });
  it('the fixes table: none failed within the bound, measured costs, crashed rows say so', () => {
    expect(text).toContain('none failed in 1000');
    expect(text).toContain('clientRstsSent=1000');
    expect(text).toMatch(/UDP\s+not measured\s+-\s+not measured: boom/);
    expect(text).toContain('Verdicts: confirmed 1. Total 75.0 s.');
  });
  it('only fixes: no empty claims summary', () => {
    const t = renderLabReport({ ...report, claims: [] });
    expect(t).toContain('0 claims and 2 fixes');
    expect(t).not.toContain('Verdicts:');
    expect(t).toContain('Total 75.0 s.');
  });
});

describe('formatValue', () => {
  it('numbers, nulls, lists and objects as short text', () => {
    expect(formatValue(3)).toBe('3');
    expect(formatValue(2.5)).toBe('2.50');
    expect(formatValue(null)).toBe('null');
    expect(formatValue(['a', 1])).toBe('[a, 1]');
    expect(formatValue({ a: 1, b: 'x' })).toBe('{a: 1, b: x}');
  });
});
