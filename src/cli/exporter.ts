/**
 * `twlab exporter`: Prometheus /metrics for this namespace's TCP teardown state (sockets by
 * state, TIME_WAIT time left, port pressure per destination, sysctls, kernel counters), each
 * scrape a fresh census; with -A, of every network namespace on the host, labelled by owner.
 */
import type { Command } from 'commander';
import { UsageError } from '../common/errors.js';
import { parseIntInRange } from '../common/parse.js';
import { action, option } from './command.js';
import {
  addLocalServerOptions,
  addNetnsOptions,
  addRateWindowOption,
  addSourceOption,
  checkNetnsFlags,
  serveUntilStopped,
  type LocalServerFlags,
  type NetnsFlags,
  type TableSource,
} from './shared-options.js';

interface ExporterFlags extends LocalServerFlags, NetnsFlags {
  top: number;
  source: TableSource;
  window: number;
  maxNamespaces?: number;
}

export function registerExporter(program: Command): void {
  const cmd = program
    .command('exporter')
    .description(
      'Serve Prometheus metrics (/metrics) from a census of this namespace (or, with -A, of every one) taken at each scrape',
    );
  addLocalServerOptions(cmd, '127.0.0.1:9477');
  addRateWindowOption(addNetnsOptions(addSourceOption(cmd)))
    .option(
      '--top <n>',
      'destinations with their own pressure series; the rest are folded into one "other" series',
      option((t) => parseIntInRange(t, '--top', 1, 1000)),
      10,
    )
    .option(
      '--max-namespaces <n>',
      'with -A: namespaces with their own series, most at risk first; the rest are summed in netns="other" (default 20)',
      option((t) => parseIntInRange(t, '--max-namespaces', 1, 1000)),
    )
    .addHelpText(
      'after',
      `
Examples:
  twlab exporter                              serve http://127.0.0.1:9477/metrics
  twlab exporter --listen 127.0.0.1:0 --json  a free port; prints {"url": ...}
  twlab exporter --top 20                     20 destinations with their own series
  twlab sandbox -- twlab exporter             the metrics of a fresh namespace
  twlab exporter -A                           every network namespace on the host, labelled
                                              netns, owner_kind, container_id, pod_uid, ...
  twlab exporter --netns /run/netns/blue      one namespace (a PID or a mount)

With -A or --netns every scrape enters each namespace on the scrape's thread to read it, and
comes straight back; that needs root (CAP_SYS_ADMIN). Only GET /metrics and / are answered, and
only under this server's own address in the Host header (localhost too on loopback; this
machine's name and, for 0.0.0.0 or ::, its addresses otherwise): a name rebound to it (DNS
rebinding) gets 403. Scraped under another name (a DNS alias)? --allow-host NAME, repeatable.
Metrics, scrape config, alert rules (deploy/prometheus/twlab-rules.yml) and a Kubernetes
DaemonSet (deploy/kubernetes/daemonset.yaml): docs/prometheus.md.`,
    )
    .action(
      action(async (flags: ExporterFlags) => {
        checkNetnsFlags(flags);
        if (flags.maxNamespaces !== undefined && !flags.allNamespaces)
          throw new UsageError('--max-namespaces needs --all-namespaces (-A)');
        const { startExporter } = await import('../exporter/server.js');
        const namespaces = await exportedNamespaces(flags);
        await serveUntilStopped(
          flags,
          { name: 'exporter', verb: 'serving', exposes: "can read this host's socket table" },
          () =>
            startExporter({
              host: flags.listen.host,
              port: flags.listen.port,
              allowHosts: flags.allowHost ?? [],
              top: flags.top,
              source: flags.source,
              rateWindowSec: flags.window,
              ...(namespaces ? { namespaces } : {}),
            }),
        );
      }),
    );
}

/** -A / --netns: what to scrape, checked by one scrape now so that what cannot be read is said once. */
async function exportedNamespaces(
  flags: ExporterFlags,
): Promise<import('../exporter/host-scrape.js').HostScrapeOptions | undefined> {
  if (!flags.allNamespaces && flags.netns === undefined) return undefined;
  const hs = await import('../exporter/host-scrape.js');
  const ns = {
    max: flags.maxNamespaces ?? hs.DEFAULT_MAX_NAMESPACES,
    ...(flags.netns !== undefined ? { only: hs.resolveExportedNetns(flags.netns) } : {}),
  };
  for (const line of hs.startupNotes(
    hs.scrapeHost({ ...ns, source: flags.source, rateWindowSec: flags.window }),
  ))
    process.stderr.write(`twlab: note: ${line}\n`);
  return ns;
}
