/**
 * The HTML report's pieces without a browser: escaping (claims and evidence are text from seeds
 * and kernels, never markup), the embedded data block, the sequence diagram's choice of steps,
 * and --html's usage error.
 */
import { describe, expect, it } from 'vitest';
import { escapeHtml, jsonForScript } from '../../src/report/html-escape.js';
import { drawnTransitions, sequenceSvg } from '../../src/report/html-sequence.js';
import { renderLabHtml } from '../../src/report/html.js';
import type { LabReport } from '../../src/lab/types.js';
import type { SideTransition } from '../../src/lab/close-sequences.js';
import { runCli } from '../helpers/cli.js';

const report: LabReport = {
  kernel: '6.18',
  startedAt: '2026-01-01T00:00:00Z',
  durationMs: 1000,
  fixes: [],
  claims: [
    {
      id: 'S9-99',
      claim: 'a <script>alert(1)</script> claim',
      source: { seed: 's.txt', where: 'w', quote: '"q" & <b>' },
      verdict: 'confirmed',
      evidence: { note: '</script><script>alert(2)</script>' },
      conditions: [],
      explanation: 'x < y',
      durationMs: 10,
      series: [
        {
          name: 'TIME_WAIT',
          unit: 'sockets',
          points: [
            [0, 1],
            [100, 2],
          ],
        },
      ],
    },
  ],
};

describe('HTML report rendering', () => {
  it('escapes text and keeps the data block closed', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&#60;a href=&#34;x&#34;&#62;&#39;&#38;&#39;&#60;/a&#62;');
    expect(jsonForScript({ s: '</script><!--' })).not.toMatch(/<\/script|<!--/);
    const html = renderLabHtml({ report });
    expect(html).not.toContain('<script>alert');
    expect(html).toContain('a &#60;script&#62;alert(1)&#60;/script&#62; claim');
    // Every <script> is ours: the data block, uPlot, the page's script.
    expect(html.match(/<script/g)).toHaveLength(3);
    expect(html).toContain('id="chart-S9-99"');
  });

  it("links a NAT claim's source address, and only the address, never markup from it", () => {
    const nat = {
      ...report.claims[0]!,
      id: 'N-03',
      source: {
        seed: 'NAT (field sources)',
        where: 'KB 2596065, https://mskb.pkisolutions.com/en-us/help/2596065"><b>x</b>',
        quote: 'q',
      },
    };
    const html = renderLabHtml({ report: { ...report, claims: [nat] } });
    expect(html).toContain(
      '<a href="https://mskb.pkisolutions.com/en-us/help/2596065&#34;&#62;&#60;b&#62;x&#60;/b&#62;"',
    );
    expect(html).not.toContain('<b>x</b>');
    expect(html).toContain('data-seed="NAT (field sources)"');
  });

  it('draws a minisocket hand-off as the TIME-WAIT step, not as CLOSE', () => {
    const t = (
      side: 'client' | 'server',
      from: string,
      to: string,
      source: SideTransition['source'],
    ): SideTransition => ({
      side,
      atMs: 0,
      from,
      to,
      source,
    });
    const ts = [
      t('client', 'ESTAB', 'FIN-WAIT-1', 'tracepoint'),
      t('client', 'FIN-WAIT-2', 'CLOSE', 'tracepoint'),
      t('server', 'LAST-ACK', 'CLOSE', 'tracepoint'),
      t('client', 'FIN-WAIT-2', 'TIME-WAIT', 'sock_diag'),
    ];
    expect(drawnTransitions(ts).map((x) => `${x.side} ${x.to}`)).toEqual([
      'client FIN-WAIT-1',
      'server CLOSE',
      'client TIME-WAIT',
    ]);
    const svg = sequenceSvg({
      variant: 'client-first',
      action: 'a',
      clientPort: 1,
      serverPort: 2,
      transitions: ts,
    });
    expect(svg.match(/class="seq-step"/g)).toHaveLength(3);
  });

  it('refuses --html in a folder that does not exist, before running anything (exit 2)', async () => {
    const r = await runCli(['lab', '--only', 'S0-02', '--html', '/nonexistent-dir/x.html']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--html: '\/nonexistent-dir\/x.html' is not in an existing folder/);
  });
});
