/// <reference lib="dom" />
/**
 * The HTML report in a real browser (playwright-core + Debian's Chromium): a real, fast lab run
 * (S0-01, whose exhaustion experiment records TIME_WAIT and free ports from the census, the whole
 * fixes table, plus the traced close variants) writes the file; Chromium opens it from file://
 * with the network off; the table must list every claim of the run, every chart must have drawn
 * data (pixels in its canvas), each fix of the run a bar of its colour and measured height, and
 * each close variant a diagram of real transitions. Screenshots go to artifacts/ (gitignored).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import { describeNs } from '../helpers/sandbox.js';
import { runCli } from '../helpers/cli.js';
import type { LabReport } from '../../src/lab/types.js';
import { FIXES } from '../../src/lab/fixes.js';
import { CHROMIUM, CHROMIUM_ARGS } from '../helpers/browser.js';

const ARTIFACTS = fileURLToPath(new URL('../../artifacts/', import.meta.url));

/** Canvas pixels that are not transparent/white: a chart with plotted data has many. */
async function inkedPixels(page: Page, selector: string): Promise<number> {
  return page.$eval(selector, (el) => {
    const canvas = el.querySelector('canvas');
    if (!canvas) return 0;
    const ctx = canvas.getContext('2d')!;
    const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
    let n = 0;
    for (let i = 0; i < data.length; i += 4) {
      const [r, g, b, a] = [data[i]!, data[i + 1]!, data[i + 2]!, data[i + 3]!];
      // Coloured (series) pixels only: the grid and axes are grey.
      if (a > 0 && Math.max(r, g, b) - Math.min(r, g, b) > 60) n++;
    }
    return n;
  });
}

/**
 * The bars chart's canvas, one pixel column through the middle of each of `n` bars (x scale
 * 0.4..n+0.6, as the page sets it; the plot area is uPlot's .u-over): how many pixels of that
 * column, inside the plot area, are the 'failed after' red and the 'no failure' green.
 */
async function barColumns(
  page: Page,
  selector: string,
  n: number,
): Promise<Array<{ red: number; green: number }>> {
  return page.$eval(
    selector,
    (el, n) => {
      const canvas = el.querySelector('canvas')!;
      const c = canvas.getBoundingClientRect();
      const over = el.querySelector('.u-over')!.getBoundingClientRect();
      const k = canvas.width / c.width;
      const top = Math.floor((over.top - c.top) * k);
      const height = Math.floor(over.height * k);
      const ctx = canvas.getContext('2d')!;
      return Array.from({ length: n }, (_, i) => {
        const x = Math.round((over.left - c.left + ((i + 1 - 0.4) / (n + 0.2)) * over.width) * k);
        const { data } = ctx.getImageData(x, top, 1, height);
        let red = 0;
        let green = 0;
        for (let p = 0; p < data.length; p += 4) {
          const [r, g, b, a] = [data[p]!, data[p + 1]!, data[p + 2]!, data[p + 3]!];
          if (a < 128) continue;
          if (r > 150 && g < 90 && b < 90) red++;
          else if (g > 100 && r < 60 && b > 80 && b < 160) green++;
        }
        return { red: Math.round(red / k), green: Math.round(green / k) };
      });
    },
    n,
  );
}

describeNs('twlab lab --html in Chromium', () => {
  let browser: Browser;
  const file = join(ARTIFACTS, 'lab-report.html');
  let report: LabReport;

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    // S0-01 and the whole fixes table: about 10-15 s on an idle 2-core machine, ~27 s with both
    // cores busy (two such runs at once beside two busy loops).
    const r = await runCli(['lab', '--only', 'S0-01,fixes', '--json', '--html', file], {
      timeoutMs: 110_000,
    });
    expect(r.code, r.stderr).toBe(0);
    report = JSON.parse(r.stdout) as LabReport;
    expect(existsSync(CHROMIUM), `${CHROMIUM} (Debian's chromium package, installed by .ci/run)`).toBe(true);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
  });

  async function open(path: string): Promise<{ page: Page; errors: string[]; requests: string[] }> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, offline: true });
    const page = await context.newPage();
    const errors: string[] = [];
    const requests: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('request', (req) => requests.push(req.url()));
    await page.goto(`file://${path}`);
    await page.waitForSelector('body[data-charts-ready="yes"]', { timeout: 15_000 });
    return { page, errors, requests };
  }

  it('is one self-contained file: no external script, style, font or image', () => {
    const html = readFileSync(file, 'utf8');
    expect(html).not.toMatch(/<script[^>]+src=/i);
    expect(html).not.toMatch(/<link[^>]+href=/i);
    expect(html).not.toMatch(/url\((?!data:)/i);
    expect(html).not.toMatch(/@import/i);
  });

  it('shows every claim, the series charts with data, and the four traced close variants', async () => {
    const { page, errors, requests } = await open(file);
    expect(errors).toEqual([]);
    expect(requests.every((u) => u.startsWith('file://'))).toBe(true);
    const rows = await page.$$eval('tr.claim', (rs) => rs.map((r) => (r as HTMLElement).dataset['id']));
    expect(rows).toEqual(report.claims.map((c) => c.id));
    const withSeries = report.claims.filter((c) => c.series.length > 0);
    expect(withSeries.map((c) => c.id)).toContain('S0-01');
    for (const c of withSeries) {
      // Each series' points are in the chart's data, and its canvas has coloured pixels.
      expect(await inkedPixels(page, `#chart-${c.id}`), `chart of ${c.id}`).toBeGreaterThan(200);
    }
    const variants = await page.$$eval('figure.seq-fig', (fs) =>
      fs.map((f) => ({
        variant: (f as HTMLElement).dataset['variant'],
        steps: f.querySelectorAll('.seq-step').length,
        text: f.textContent ?? '',
      })),
    );
    expect(variants.map((v) => v.variant)).toEqual(['client-first', 'server-first', 'simultaneous', 'rst']);
    for (const v of variants) expect(v.steps, v.variant).toBeGreaterThanOrEqual(4);
    // What the kernel did, as traced: client-first leaves TIME-WAIT on the client, RST none.
    expect(variants[0]!.text).toContain('FIN-WAIT-2 → TIME-WAIT');
    expect(variants[3]!.text).not.toContain('TIME-WAIT');
    await page.screenshot({ path: join(ARTIFACTS, 'lab-report.png'), fullPage: true });

    // Filters: one verdict that is absent hides every row.
    const absent = ['confirmed', 'refuted', 'depends', 'not-applicable', 'not-tested'].find(
      (v) => !report.claims.some((c) => c.verdict === v),
    )!;
    await page.selectOption('#f-verdict', absent);
    expect(await page.$$eval('tr.claim:not([hidden])', (rs) => rs.length)).toBe(0);
    await page.selectOption('#f-verdict', report.claims[0]!.verdict);
    expect(await page.$$eval('tr.claim:not([hidden])', (rs) => rs.length)).toBeGreaterThan(0);
    await page.click('tr.claim');
    expect(await page.isVisible(`#d-${report.claims[0]!.id}`)).toBe(true);
    expect(await page.textContent(`#d-${report.claims[0]!.id}`)).toContain(
      report.claims[0]!.explanation.slice(0, 40),
    );
    await page.context().close();
  }, 60_000);

  it('draws the fixes of this run as bars: one per fix, its colour and height from its row', async () => {
    expect(report.fixes.map((f) => f.id)).toEqual(FIXES.map((f) => f.id));
    const measured = report.fixes.filter((f) => !f.error);
    expect(
      measured.map((f) => f.id),
      'fixes that crashed in this run',
    ).toEqual(FIXES.map((f) => f.id));
    const { page, errors } = await open(file);
    expect(errors).toEqual([]);
    const bars = await barColumns(page, '#chart-fixes', report.fixes.length);
    // Heights are proportional to the numbers the run measured: connections before the first
    // failure (red), or every attempted one when none failed (green).
    const values = report.fixes.map((f) => f.connectionsBeforeFailure ?? f.attempted);
    const pxPerConnection = Math.max(...bars.map((b) => b.red + b.green)) / Math.max(...values);
    report.fixes.forEach((f, i) => {
      const bar = bars[i]!;
      const what = `bar of fix ${f.id} (${values[i]} connections): ${JSON.stringify(bar)}`;
      if (f.connectionsBeforeFailure !== null) {
        expect(bar.red, what).toBeGreaterThan(0);
        expect(bar.green, what).toBe(0);
      } else {
        expect(bar.green, what).toBeGreaterThan(0);
        expect(bar.red, what).toBe(0);
      }
      expect(Math.abs(bar.red + bar.green - values[i]! * pxPerConnection), what).toBeLessThanOrEqual(4);
    });
    await page.locator('#chart-fixes').screenshot({ path: join(ARTIFACTS, 'lab-report-fixes.png') });
    await page.context().close();
  }, 60_000);
});
