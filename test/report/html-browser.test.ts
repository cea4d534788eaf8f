/// <reference lib="dom" />
/**
 * The HTML report in a real browser (playwright-core + Debian's Chromium): a real, fast lab run
 * (S0-01, whose exhaustion experiment records TIME_WAIT and free ports from the census, plus the
 * traced close variants) writes the file; Chromium opens it from file:// with the network off;
 * the table must list every claim of the run, every chart must have drawn data (pixels in its
 * canvas), the fixes' bars too (from a second, fixes-only report), and each close variant a
 * diagram of real transitions. Screenshots go to artifacts/ (gitignored).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import { describeNs } from '../helpers/sandbox.js';
import { runCli } from '../helpers/cli.js';
import type { LabReport } from '../../src/lab/types.js';
import { renderLabHtml } from '../../src/report/html.js';
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

describeNs('twlab lab --html in Chromium', () => {
  let browser: Browser;
  const file = join(ARTIFACTS, 'lab-report.html');
  let report: LabReport;

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    const r = await runCli(['lab', '--only', 'S0-01', '--json', '--html', file], { timeoutMs: 110_000 });
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

  it('draws the fixes as bars, one per fix', async () => {
    // The fixes table takes minutes to measure: its chart is checked on this run's rows, with
    // the same numbers the fixes would have (any connectionsBeforeFailure) rendered by the same code.
    const fixes = [
      {
        id: 'none',
        name: 'none',
        source: 's',
        connectionsBeforeFailure: 100,
        attempted: 1000,
        connectionsPerSecond: 1,
        firstError: 'connect EADDRNOTAVAIL',
        costs: {},
        note: '',
      },
      {
        id: 'linger0',
        name: 'linger',
        source: 's',
        connectionsBeforeFailure: null,
        attempted: 1000,
        connectionsPerSecond: 1,
        firstError: null,
        costs: {},
        note: '',
      },
    ];
    const path = join(ARTIFACTS, 'lab-report-fixes.html');
    writeFileSync(path, renderLabHtml({ report: { ...report, fixes } }));
    const { page, errors } = await open(path);
    expect(errors).toEqual([]);
    expect(await inkedPixels(page, '#chart-fixes')).toBeGreaterThan(500);
    await page.screenshot({ path: join(ARTIFACTS, 'lab-report-fixes.png'), fullPage: true });
    await page.context().close();
  }, 60_000);
});
