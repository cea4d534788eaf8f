#!/usr/bin/env node
/**
 * Runs INSIDE a sandbox host (the dashboard listens on that host's loopback): Chromium opens the
 * dashboard, waits until the TIME-WAIT box shows the expected count, and tries the POSTs a
 * foreign page could make. Prints one JSON document with what it saw.
 *
 *   node dashboard-browser.mjs URL EXPECTED_TIME_WAIT SCREENSHOT_PATH CHROMIUM ARGS_JSON
 *
 * (CHROMIUM and its flags come from test/helpers/browser.ts, passed by the test.)
 */
/* global process, document, fetch, URL */
import { chromium } from 'playwright-core';

const [url, expected, shot, executablePath, argsJson] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath, args: JSON.parse(argsJson) });
const out = { errors: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.on('pageerror', (e) => out.errors.push(String(e)));
  await page.goto(url);
  const t0 = Date.now();
  out.reached = await page
    .waitForFunction((n) => document.getElementById('count-TIME-WAIT')?.textContent === n, expected, {
      timeout: 20_000,
      polling: 200,
    })
    .then(
      () => true,
      () => false,
    );
  out.waitedMs = Date.now() - t0;
  out.timeWaitShown = await page.textContent('#count-TIME-WAIT');
  // From the page itself, without the token: refused.
  out.postWithoutToken = await page.evaluate(async () => {
    const r = await fetch('/api/runs', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"claim":"S0-02"}',
    });
    return r.status;
  });
  // As another origin would, even with the right token: refused.
  const token = await page.getAttribute('meta[name=twlab-token]', 'content');
  const foreign = await page.request.post(new URL('/api/predict', url).href, {
    headers: { origin: 'http://evil.example', 'x-twlab-token': token },
    data: { rate: 100 },
  });
  out.postFromOtherOrigin = foreign.status();
  // The page's own form, with its token: accepted, and the model's answer shown.
  await page.fill('input[name=rate]', '500');
  await page.fill('input[name=low]', '40000');
  await page.fill('input[name=high]', '40999');
  await page.selectOption('select[name=twReuse]', '0');
  await page.click('#predict button');
  await page.waitForFunction(
    () => /first EADDRNOTAVAIL/.test(document.getElementById('prediction').textContent),
    null,
    { timeout: 20_000 },
  );
  out.prediction = await page.textContent('#prediction');
  // A lab claim run from the page; its result arrives over the event stream.
  await page.selectOption('#claim', 'S0-02');
  await page.click('#run');
  out.runVerdict = await page
    .waitForFunction(() => document.getElementById('verdict').textContent, null, {
      timeout: 45_000,
      polling: 250,
    })
    .then(
      (h) => h.jsonValue(),
      () => null,
    );
  out.runLog = await page.textContent('#runlog');
  await page.screenshot({ path: shot, fullPage: true });
} finally {
  await browser.close();
}
process.stdout.write(`${JSON.stringify(out)}\n`);
