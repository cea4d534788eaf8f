#!/usr/bin/env node
/**
 * Chromium on the dashboard's host view: waits until the table lists every expected namespace,
 * reads the rows' order, clicks one namespace's row and waits until the panels show that
 * namespace, then reads the panels' numbers and the history chart's latest point. Prints one JSON document with what it saw.
 *
 *   node host-browser.mjs URL INODES_JSON CLICK_INODE SCREENSHOT_PATH CHROMIUM ARGS_JSON
 */
/* global process, document, location */
import { chromium } from 'playwright-core';

const [url, inodesJson, click, shot, executablePath, argsJson] = process.argv.slice(2);
const inodes = JSON.parse(inodesJson);
const browser = await chromium.launch({ executablePath, args: JSON.parse(argsJson) });
const out = { errors: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.on('pageerror', (e) => out.errors.push(String(e)));
  await page.goto(url);
  await page.waitForFunction(
    (want) => want.every((i) => document.querySelector(`#host-rows tr[data-inode="${i}"]`)),
    inodes,
    { timeout: 30_000, polling: 250 },
  );
  const rowTexts = () =>
    [...document.querySelectorAll('#host-rows tr')].map((tr) => ({
      inode: tr.dataset.inode,
      cells: [...tr.children].map((td) => td.textContent),
    }));
  out.rows = await page.evaluate(rowTexts);
  const t0 = Date.now();
  await page.click(`#host-rows tr[data-inode="${click}"]`);
  // The panels have switched once the bar names the namespace, the pressure table lists its
  // fixture's destination and doctor's findings name it.
  await page.waitForFunction(
    (inode) =>
      document.getElementById('ns-title').textContent.startsWith(`Namespace ${inode}:`) &&
      document.getElementById('pressure').textContent.includes('127.0.0.1:7000') &&
      document.getElementById('findings').textContent.includes('Reuse connections to 127.0.0.1:7000'),
    click,
    { timeout: 30_000, polling: 200 },
  );
  out.switchedMs = Date.now() - t0;
  out.hash = await page.evaluate(() => location.hash);
  out.selected = await page.getAttribute('#host-rows tr.selected', 'data-inode');
  out.title = await page.textContent('#ns-title');
  out.detail = await page.textContent('#ns-detail');
  out.counts = await page.evaluate(() =>
    Object.fromEntries(
      [...document.querySelectorAll('#states .st')].map((g) => [
        g.dataset.state,
        document.getElementById(`count-${g.dataset.state}`).textContent,
      ]),
    ),
  );
  out.pressure = await page.evaluate(() =>
    [...document.querySelectorAll('#pressure tr')].map((tr) => [...tr.children].map((td) => td.textContent)),
  );
  out.findings = await page.textContent('#findings');
  // The history chart (uPlot) has drawn a few refreshes of this namespace.
  await page.waitForFunction(() => Number(document.getElementById('history').dataset.points) >= 3, null, {
    timeout: 30_000,
    polling: 200,
  });
  out.chart = await page.evaluate(() => ({
    canvas: document.querySelector('#history canvas') !== null,
    last: JSON.parse(document.getElementById('history').dataset.last),
    legend: [...document.querySelectorAll('#history .u-legend .u-label')].map((e) => e.textContent),
  }));
  await page.screenshot({ path: shot, fullPage: true });
} finally {
  await browser.close();
}
process.stdout.write(`${JSON.stringify(out)}\n`);
