/**
 * `twlab exporter`: Prometheus /metrics for this namespace's TCP teardown state (sockets by
 * state, TIME_WAIT time left, port pressure per destination, sysctls, kernel counters), each
 * scrape a fresh census.
 */
import type { Command } from 'commander';
import {
  parseChoice,
  parseHostPort,
  parseIntInRange,
  parseNumberInRange,
  type HostPort,
} from '../common/parse.js';
import { action, option, printJson } from './command.js';

interface ExporterFlags {
  listen: HostPort;
  top: number;
  source: 'auto' | 'netlink' | 'procfs';
  duration?: number;
  json?: boolean;
}

export function registerExporter(program: Command): void {
  program
    .command('exporter')
    .description('Serve Prometheus metrics (/metrics) from a census of this namespace taken at each scrape')
    .option(
      '--listen <host:port>',
      'address to serve on (loopback by default; any other address prints a warning)',
      option((t) => parseHostPort(t, '--listen', { allowZeroPort: true })),
      parseHostPort('127.0.0.1:9477', '--listen'),
    )
    .option(
      '--top <n>',
      'destinations with their own pressure series; the rest are folded into one "other" series',
      option((t) => parseIntInRange(t, '--top', 1, 1000)),
      10,
    )
    .option(
      '--source <source>',
      'where to read the table: auto (netlink, /proc/net/tcp if denied), netlink, procfs',
      option((t) => parseChoice(t, '--source', ['auto', 'netlink', 'procfs'] as const)),
      'auto',
    )
    .option(
      '--duration <seconds>',
      'stop after this long (default: until SIGINT/SIGTERM)',
      option((t) => parseNumberInRange(t, '--duration', 0.1, 31_536_000)),
    )
    .option('--json', 'print one JSON document ({"url": ...}) on stdout once listening')
    .addHelpText(
      'after',
      `
Examples:
  twlab exporter                              serve http://127.0.0.1:9477/metrics
  twlab exporter --listen 127.0.0.1:0 --json  a free port; prints {"url": ...}
  twlab exporter --top 20                     20 destinations with their own series
  twlab sandbox -- twlab exporter             the metrics of a fresh namespace

Only GET /metrics and / are answered. Scrape config and alert rules: docs/prometheus.md.`,
    )
    .action(
      action(async (flags: ExporterFlags) => {
        const { startExporter, isLoopback } = await import('../exporter/server.js');
        if (!isLoopback(flags.listen.host)) {
          process.stderr.write(
            `twlab: warning: --listen ${flags.listen.host} is not loopback: anyone who reaches it can read this host's socket table\n`,
          );
        }
        const exp = await startExporter({
          host: flags.listen.host,
          port: flags.listen.port,
          top: flags.top,
          source: flags.source,
        });
        if (flags.json) printJson({ url: exp.url });
        else process.stderr.write(`twlab exporter: serving ${exp.url}\n`);
        await new Promise<void>((resolve) => {
          const stop = (): void => resolve();
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
          if (flags.duration !== undefined) setTimeout(stop, flags.duration * 1000).unref();
        });
        await exp.close();
      }),
    );
}
