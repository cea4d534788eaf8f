/**
 * twlab ui in a sandbox host, seen through Chromium running in the same host (the dashboard is on
 * that host's loopback): N TIME-WAIT sockets made there by the census fixture must appear in the
 * state diagram's TIME-WAIT box (equal to ss in that host); a POST without the page's token, or
 * from another origin, is refused with 403; the page's own predict form works.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createSandbox, type Sandbox } from '../../src/sandbox/index.js';
import { twlabArgv } from '../../src/common/paths.js';
import { describeNs } from '../helpers/sandbox.js';
import { waitForUrl } from '../helpers/url.js';
import { CHROMIUM, CHROMIUM_ARGS } from '../helpers/browser.js';
import { spawnUntilLine, ssTimeWait } from '../exporter/exporter-sandbox.js';

const FIXTURE = fileURLToPath(new URL('../observe/census-fixture.py', import.meta.url));
const SCRIPT = fileURLToPath(new URL('./dashboard-browser.mjs', import.meta.url));
const ARTIFACTS = fileURLToPath(new URL('../../artifacts/', import.meta.url));
const N = 120;

interface Seen {
  errors: string[];
  reached: boolean;
  waitedMs: number;
  timeWaitShown: string;
  postWithoutToken: number;
  postFromOtherOrigin: number;
  prediction: string;
  runVerdict: string;
  runLog: string;
}

describeNs('twlab ui in a sandbox, in Chromium', () => {
  let box: Sandbox;
  const children: ChildProcess[] = [];
  let url: string;

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    box = await createSandbox({ hosts: 1, sysctls: { tcp_tw_reuse: 0 } });
    const fx = await spawnUntilLine(box.client, [
      'python3',
      FIXTURE,
      JSON.stringify({ port: 7000, tw: N, hold_s: 90 }),
    ]);
    children.push(fx.child);
    const ui = box.client.spawn(twlabArgv('ui', '--listen', '127.0.0.1:7411', '--json'));
    children.push(ui);
    url = await waitForUrl(ui, 'twlab ui');
  }, 60_000);

  afterAll(async () => {
    for (const c of children) c.stdin?.end();
    await box?.close();
  });

  it('shows the TIME-WAIT count reach N, refuses token-less and foreign POSTs (403)', async () => {
    expect(await ssTimeWait(box.client)).toBe(N);
    const r = await box.client.exec(
      [
        process.execPath,
        SCRIPT,
        url,
        String(N),
        join(ARTIFACTS, 'ui-dashboard.png'),
        CHROMIUM,
        JSON.stringify(CHROMIUM_ARGS),
      ],
      { timeoutMs: 60_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    const seen = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Seen;
    expect(seen.errors).toEqual([]);
    expect(seen.timeWaitShown).toBe(String(N));
    expect(seen.reached).toBe(true);
    expect(seen.postWithoutToken).toBe(403);
    expect(seen.postFromOtherOrigin).toBe(403);
    expect(seen.prediction).toMatch(/first EADDRNOTAVAIL: after \d/);
    // The lab run (S0-02, ~1 s) started from the page reached a verdict, shown with its explanation.
    expect(seen.runVerdict, seen.runLog).toMatch(/^(confirmed|refuted|depends|not-applicable|not-tested)$/);
    expect(seen.runLog).toContain(`S0-02: ${seen.runVerdict.toUpperCase()}`);
  }, 90_000);
});
