/**
 * `twlab exporter`: Prometheus /metrics for this namespace's TCP teardown state (sockets by
 * state, TIME_WAIT time left, port pressure per destination, sysctls, kernel counters), each
 * scrape a fresh census.
 */
import type { Command } from 'commander';
import { parseIntInRange } from '../common/parse.js';
import { action, option } from './command.js';
import {
  addLocalServerOptions,
  addSourceOption,
  serveUntilStopped,
  type LocalServerFlags,
  type TableSource,
} from './shared-options.js';

interface ExporterFlags extends LocalServerFlags {
  top: number;
  source: TableSource;
}

export function registerExporter(program: Command): void {
  const cmd = program
    .command('exporter')
    .description('Serve Prometheus metrics (/metrics) from a census of this namespace taken at each scrape');
  addLocalServerOptions(cmd, '127.0.0.1:9477');
  addSourceOption(cmd)
    .option(
      '--top <n>',
      'destinations with their own pressure series; the rest are folded into one "other" series',
      option((t) => parseIntInRange(t, '--top', 1, 1000)),
      10,
    )
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
        const { startExporter } = await import('../exporter/server.js');
        await serveUntilStopped(
          flags,
          { name: 'exporter', verb: 'serving', exposes: "can read this host's socket table" },
          () =>
            startExporter({
              host: flags.listen.host,
              port: flags.listen.port,
              top: flags.top,
              source: flags.source,
            }),
        );
      }),
    );
}
