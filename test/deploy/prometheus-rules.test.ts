/**
 * The shipped alert rules (deploy/prometheus/twlab-rules.yml) under Prometheus's own rule tester:
 * `promtool test rules` on twlab-rules.test.yml must pass (an exhaustion-soon alert for the
 * namespace that runs out, none for the one that holds steady), and must fail when the alert is
 * made to fire on pressure alone, so the test file can tell the two apart. Every metric the rules
 * name must be one the exporter registers, in both modes.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { createExporterRegistry } from '../../src/exporter/metrics.js';

const DIR = fileURLToPath(new URL('../../deploy/prometheus/', import.meta.url));
const RULES = join(DIR, 'twlab-rules.yml');
const TESTS = join(DIR, 'twlab-rules.test.yml');
const PROMTOOL = '/usr/bin/promtool';

function promtool(...args: string[]): { code: number | null; out: string } {
  const r = spawnSync(PROMTOOL, args, { encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw r.error;
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('deploy/prometheus/twlab-rules.yml', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'twlab-rules-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('is valid, and promtool test rules passes', () => {
    const check = promtool('check', 'rules', RULES);
    expect(check.code, check.out).toBe(0);
    const test = promtool('test', 'rules', TESTS);
    expect(test.code, test.out).toBe(0);
    expect(test.out).toMatch(/SUCCESS/);
  });

  it('fails the test when the exhaustion alert fires on a namespace that holds steady', () => {
    const rules = readFileSync(RULES, 'utf8');
    const broken = rules.replace(
      'expr: twlab_netns_port_exhaustion_seconds < 300',
      'expr: twlab_netns_ports_held_ratio > 0.8',
    );
    expect(broken).not.toBe(rules);
    writeFileSync(join(tmp, 'twlab-rules.yml'), broken);
    copyFileSync(TESTS, join(tmp, 'twlab-rules.test.yml'));
    const test = promtool('test', 'rules', join(tmp, 'twlab-rules.test.yml'));
    expect(test.code).not.toBe(0);
    expect(test.out).toMatch(/container_name="cache"/);
  });

  it('names only metrics the exporter registers', async () => {
    const used = new Set(readFileSync(RULES, 'utf8').match(/\btwlab_[a-z_]+/g));
    const single = createExporterRegistry();
    const hostWide = createExporterRegistry({ namespaces: { max: 20 } });
    const names = new Set(
      [single, hostWide].flatMap((r) => r.registry.getMetricsAsArray().map((m) => m.name)),
    );
    await Promise.all([single.close(), hostWide.close()]);
    expect(used.size).toBeGreaterThan(5);
    for (const n of used) expect(names.has(n), n).toBe(true);
  });
});
