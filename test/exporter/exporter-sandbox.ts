/**
 * Shared by the exporter tests: start fixtures and `twlab exporter` inside a sandbox host, and
 * read HTTP from inside it (its loopback is only reachable from its own namespace).
 */
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SandboxHost } from '../../src/sandbox/index.js';
import { twlabArgv } from '../../src/common/paths.js';
import type * as HttpGet from '../../src/exporter/http-get.js';
import type { HttpGetResult } from '../../src/exporter/http-get.js';
import { remote, remoteModule } from '../../src/sandbox/remote.js';
import { waitForUrl } from '../helpers/url.js';

const HTTP_GET = remoteModule<typeof HttpGet>('exporter/http-get.js');

/** Spawn argv in the host and resolve with its first stdout line (rejects if it exits first). */
export function spawnUntilLine(
  host: SandboxHost,
  argv: string[],
  timeoutMs = 30_000,
): Promise<{ child: ChildProcess; line: string }> {
  const child = host.spawn(argv);
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${argv.join(' ')}: no line in ${timeoutMs} ms: ${err}`)),
      timeoutMs,
    );
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolve({ child, line: out.slice(0, nl) });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${argv.join(' ')} exited ${code}: ${err}`));
    });
  });
}

/** `twlab exporter` in the host (run by `wrap`, e.g. setpriv, if given); resolves with its /metrics URL. */
export async function startExporterIn(
  host: SandboxHost,
  listen: string,
  extra: string[] = [],
  wrap: string[] = [],
): Promise<{ child: ChildProcess; url: string; stderr(): string }> {
  // --json prints a pretty document over several lines: wait for the whole of it.
  const child = host.spawn([...wrap, ...twlabArgv('exporter', '--listen', listen, '--json', ...extra)]);
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const url = await waitForUrl(child, 'exporter');
  return { child, url, stderr: () => err };
}

export function getIn(host: SandboxHost, url: string): Promise<HttpGetResult> {
  return remote(host, HTTP_GET).httpGet(url);
}

/** The count of `ss -Htan state time-wait` in the host. */
export async function ssTimeWait(host: SandboxHost): Promise<number> {
  const r = await host.exec(['ss', '-Htan', 'state', 'time-wait']);
  if (r.code !== 0) throw new Error(`ss: ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l.trim()).length;
}

/** Samples of one metric in Prometheus text format: labels string -> value. */
export function samples(text: string, metric: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(metric)) continue;
    const m = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m && m[1] === metric) out.set(m[2] ?? '', m[3] === '+Inf' ? Infinity : Number(m[3]));
  }
  return out;
}

/** Samples of one metric in Prometheus text format, with their labels parsed. */
export function series(text: string, metric: string): { labels: Record<string, string>; value: number }[] {
  const out: { labels: Record<string, string>; value: number }[] = [];
  for (const [labels, value] of samples(text, metric)) {
    const parsed: Record<string, string> = {};
    for (const m of labels.matchAll(/([a-z_]+)="((?:[^"\\]|\\.)*)"/g)) parsed[m[1]!] = m[2]!;
    out.push({ labels: parsed, value });
  }
  return out;
}

/**
 * A real Prometheus in the host, scraping `target` (host:port) as job "twlab" every `intervalS`
 * seconds, with its config and data in `dir`; `stderr()` is the last of what it said.
 */
export function startPrometheusIn(
  host: SandboxHost,
  opts: { dir: string; listen: string; target: string; intervalS: number },
): { child: ChildProcess; stderr(): string } {
  const config = join(opts.dir, 'prometheus.yml');
  writeFileSync(
    config,
    [
      'global:',
      `  scrape_interval: ${opts.intervalS}s`,
      `  evaluation_interval: ${opts.intervalS}s`,
      'scrape_configs:',
      '  - job_name: twlab',
      `    scrape_timeout: ${opts.intervalS}s`,
      '    static_configs:',
      `      - targets: ['${opts.target}']`,
      '',
    ].join('\n'),
  );
  const child = host.spawn([
    '/usr/bin/prometheus',
    `--config.file=${config}`,
    `--storage.tsdb.path=${join(opts.dir, 'data')}`,
    `--web.listen-address=${opts.listen}`,
    '--log.level=warn',
  ]);
  let said = '';
  child.stderr!.on('data', (d: Buffer) => (said = (said + d.toString()).slice(-4000)));
  return { child, stderr: () => said };
}
