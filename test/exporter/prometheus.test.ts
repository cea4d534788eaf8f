/**
 * The exporter scraped by a real Prometheus (Debian's /usr/bin/prometheus): both run inside one
 * sandbox host (the exporter's loopback is only reachable from there), with known TIME-WAIT
 * sockets made by the census fixture; the value read back through Prometheus's HTTP query API
 * must equal `ss -tan state time-wait` in that host.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createSandbox, type Sandbox } from '../../src/sandbox/index.js';
import { describeNs } from '../helpers/sandbox.js';
import { getIn, spawnUntilLine, ssTimeWait, startExporterIn, startPrometheusIn } from './exporter-sandbox.js';

const FIXTURE = fileURLToPath(new URL('../observe/census-fixture.py', import.meta.url));
const TW = 150;
// Below the sandbox's ephemeral range (32768-60999): nothing else can hold these.
const EXPORTER_PORT = 9000 + Math.floor(Math.random() * 1000);
const PROM_PORT = 10000 + Math.floor(Math.random() * 1000);

interface QueryResponse {
  status: string;
  data: { result: { metric: Record<string, string>; value: [number, string] }[] };
}

describeNs('twlab exporter scraped by a real Prometheus in a sandbox', () => {
  let box: Sandbox;
  let dir: string;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    // tcp_tw_reuse=0: loopback reuse would recycle TIME-WAIT tuples.
    box = await createSandbox({ hosts: 1, sysctls: { tcp_tw_reuse: 0 } });
    dir = mkdtempSync(join(tmpdir(), 'twlab-prom-'));
    // Prometheus runs as the sandbox's root; the temp dir is ours (root too).
  }, 60_000);

  afterAll(async () => {
    for (const c of children) c.stdin?.end();
    await box?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('reads twlab_tcp_sockets{state="TIME-WAIT"} back through /api/v1/query, equal to ss', async () => {
    const host = box.client;
    const fixture = await spawnUntilLine(host, [
      'python3',
      FIXTURE,
      JSON.stringify({ port: 7000, tw: TW, hold_s: 90 }),
    ]);
    children.push(fixture.child);
    const exp = await startExporterIn(host, `127.0.0.1:${EXPORTER_PORT}`);
    children.push(exp.child);
    const prom = startPrometheusIn(host, {
      dir,
      listen: `127.0.0.1:${PROM_PORT}`,
      target: `127.0.0.1:${EXPORTER_PORT}`,
      intervalS: 1,
    });
    children.push(prom.child);

    const query = encodeURIComponent('twlab_tcp_sockets{state="TIME-WAIT",job="twlab"}');
    const url = `http://127.0.0.1:${PROM_PORT}/api/v1/query?query=${query}`;
    let seen: number | undefined;
    const deadline = Date.now() + 30_000;
    while (seen === undefined && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      try {
        const res = await getIn(host, url);
        if (res.status !== 200) continue;
        const body = JSON.parse(res.body) as QueryResponse;
        const first = body.data.result[0];
        if (first) seen = Number(first.value[1]);
      } catch {
        // Prometheus not listening yet
      }
    }
    expect(seen, `no sample within 30 s; prometheus said: ${prom.stderr()}`).toBeDefined();
    const ss = await ssTimeWait(host);
    expect(ss).toBe(TW); // the fixture's sockets, all still in their 60 s
    expect(seen).toBe(ss);

    // The scrape itself is healthy, as Prometheus sees it.
    const up = JSON.parse(
      (await getIn(host, `http://127.0.0.1:${PROM_PORT}/api/v1/query?query=up`)).body,
    ) as QueryResponse;
    expect(up.data.result.find((r) => r.metric['job'] === 'twlab')?.value[1]).toBe('1');
  }, 90_000);
});
