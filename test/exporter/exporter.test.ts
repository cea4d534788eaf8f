/**
 * twlab exporter: bounded label cardinality with many destinations, the histogram against the
 * kernel's table, the HTTP surface (only GET /metrics and /), and the CLI's usage errors. The
 * sockets are real, made inside a sandbox host; pure folding/bucketing is checked on its own.
 */
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandbox, type Sandbox } from '../../src/sandbox/index.js';
import { twlabArgv } from '../../src/common/paths.js';
import { foldOther, OTHER } from '../../src/exporter/sample.js';
import { bucketize, TIME_WAIT_BUCKETS_SEC } from '../../src/exporter/time-wait-histogram.js';
import type { PressureEntry } from '../../src/observe/census.js';
import { describeNs } from '../helpers/sandbox.js';
import { runCli } from '../helpers/cli.js';
import { getIn, samples, spawnUntilLine, ssTimeWait, startExporterIn } from './exporter-sandbox.js';

const MANY = fileURLToPath(new URL('./many-dests.py', import.meta.url));
const DESTS = 60;
const PER = 3;
const TOP = 5;

function entry(remote: string, inUse: number, secs: number | null): PressureEntry {
  return {
    remote,
    local: '127.0.0.1',
    inUse,
    timeWait: inUse,
    rangeSize: 100,
    ratio: inUse / 100,
    ratePerSec: 1,
    secondsToExhaustion: secs,
  };
}

describe('foldOther', () => {
  it('keeps the top N and folds the rest: ports summed, highest ratio, soonest exhaustion', () => {
    const p = [entry('a:1', 50, 10), entry('b:1', 40, null), entry('c:1', 30, 5), entry('d:1', 20, null)];
    const f = foldOther(p, 2);
    expect(f.top.map((e) => e.remote)).toEqual(['a:1', 'b:1']);
    expect(f.other).toMatchObject({
      remote: OTHER,
      local: OTHER,
      inUse: 50,
      ratio: 0.3,
      secondsToExhaustion: 5,
      ratePerSec: 2,
    });
  });
  it('has no other series when everything fits, and null exhaustion when none of the rest crosses', () => {
    expect(foldOther([entry('a:1', 1, null)], 2).other).toBeUndefined();
    expect(
      foldOther([entry('a:1', 1, null), entry('b:1', 1, null)], 1).other!.secondsToExhaustion,
    ).toBeNull();
    expect(foldOther([], 3)).toEqual({ top: [] });
  });
});

describe('bucketize', () => {
  it('counts cumulatively with le semantics (a value on a bound is in that bucket)', () => {
    const b = bucketize([0, 1000, 1001, 59_999, 60_000, 61_000]);
    expect(b.count).toBe(6);
    expect([...b.buckets]).toEqual([2, 3, 3, 3, 3, 3, 3, 3, 5]);
    expect(b.sum).toBeCloseTo((1000 + 1001 + 59_999 + 60_000 + 61_000) / 1000);
    expect(b.buckets.length).toBe(TIME_WAIT_BUCKETS_SEC.length);
  });
  it('equals counting by hand, for any time left the kernel reports (0 to past 60 s)', () => {
    const values = Array.from({ length: 5000 }, (_, i) => (i * 7919) % 62_000);
    const b = bucketize(values);
    TIME_WAIT_BUCKETS_SEC.forEach((le, i) =>
      expect(b.buckets[i], `le=${le}`).toBe(values.filter((v) => v <= le * 1000).length),
    );
    expect(b.count).toBe(values.length);
    expect(b.sum).toBeCloseTo(values.reduce((a, v) => a + v, 0) / 1000, 6);
  });
  it('is all zeros for no sockets', () => {
    const b = bucketize([]);
    expect(b).toMatchObject({ count: 0, sum: 0 });
    expect([...b.buckets].every((v) => v === 0)).toBe(true);
  });
});

describe('twlab exporter usage errors', () => {
  it('names a bad --listen and --top, exit 2', async () => {
    const a = await runCli(['exporter', '--listen', 'example.com:80']);
    expect(a.code).toBe(2);
    expect(a.stderr).toMatch(/--listen: 'example.com'/);
    const b = await runCli(['exporter', '--top', '0']);
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/--top/);
  });
  it('has examples in --help', async () => {
    const r = await runCli(['exporter', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Examples:/);
  });
});

describeNs('twlab exporter in a sandbox with many destinations', () => {
  let box: Sandbox;
  let url: string;
  let metrics: string;
  let ss: number;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    box = await createSandbox({ hosts: 1, sysctls: { tcp_tw_reuse: 0 } });
    const host = box.client;
    const fx = await spawnUntilLine(host, [
      'python3',
      MANY,
      JSON.stringify({ base: 5000, dests: DESTS, per: PER, hold_s: 90 }),
    ]);
    children.push(fx.child);
    const exp = await startExporterIn(host, '127.0.0.1:9477', ['--top', String(TOP)]);
    children.push(exp.child);
    url = exp.url;
    const r = await getIn(host, url);
    expect(r.status).toBe(200);
    metrics = r.body;
    ss = await ssTimeWait(host);
  }, 90_000);

  afterAll(async () => {
    for (const c of children) c.stdin?.end();
    await box?.close();
  });

  it('exports TOP destinations plus one "other" series, whatever the number of destinations', () => {
    // +1: the scrape's own connection to the exporter, an ephemeral port like any other.
    expect(samples(metrics, 'twlab_port_destinations').get('')).toBe(DESTS + 1);
    for (const m of ['twlab_port_pressure_ratio', 'twlab_ports_in_use', 'twlab_port_exhaustion_seconds']) {
      const s = samples(metrics, m);
      expect(s.size, m).toBe(TOP + 1);
      expect([...s.keys()].filter((k) => k === `{local="${OTHER}",remote="${OTHER}"}`)).toHaveLength(1);
    }
    // Nothing is lost in the fold: every held port is in some series.
    const inUse = [...samples(metrics, 'twlab_ports_in_use').values()].reduce((a, b) => a + b, 0);
    expect(inUse).toBe(DESTS * PER + 1);
    expect(samples(metrics, 'twlab_ports_in_use').get(`{local="${OTHER}",remote="${OTHER}"}`)).toBe(
      (DESTS - TOP) * PER + 1,
    );
  });

  it('counts TIME-WAIT as ss does, in the state gauge and the histogram', () => {
    expect(ss).toBe(DESTS * PER);
    expect(samples(metrics, 'twlab_tcp_sockets').get('{state="TIME-WAIT"}')).toBe(ss);
    expect(samples(metrics, 'twlab_tcp_sockets').get('{state="LISTEN"}')).toBe(DESTS + 1); // + the exporter
    const buckets = samples(metrics, 'twlab_time_wait_remaining_seconds_bucket');
    expect(buckets.get('{le="+Inf"}')).toBe(ss);
    expect(buckets.get('{le="60"}')).toBe(ss); // TIME_WAIT never has more than 60 s left
    expect(samples(metrics, 'twlab_time_wait_remaining_seconds_count').get('')).toBe(ss);
    expect(samples(metrics, 'twlab_sockstat_tw').get('')).toBe(ss);
  });

  it('exports the sysctls this namespace has, with their values', async () => {
    const s = samples(metrics, 'twlab_sysctl');
    expect(s.get('{name="net.ipv4.tcp_tw_reuse"}')).toBe(0);
    expect(s.get('{name="net.ipv4.tcp_fin_timeout"}')).toBe(
      Number(await box.client.readSysctl('tcp_fin_timeout')),
    );
    expect([...s.keys()].some((k) => k.includes('tcp_tw_recycle'))).toBe(false);
    expect(samples(metrics, 'twlab_tcpext_total').has('{name="TW"}')).toBe(true);
  });

  it('answers only GET /metrics and /', async () => {
    const host = box.client;
    const base = url.replace(/\/metrics$/, '');
    expect((await getIn(host, `${base}/`)).status).toBe(200);
    expect((await getIn(host, `${base}/other`)).status).toBe(404);
    const post = await host.exec(['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'POST', url]);
    expect(post.stdout).toBe('405');
  });

  it('warns on a non-loopback --listen', async () => {
    const r = await box.client.exec(twlabArgv('exporter', '--listen', '0.0.0.0:0', '--duration', '0.5'));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/warning: --listen 0\.0\.0\.0 is not loopback/);
  });
});
