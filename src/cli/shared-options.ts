/**
 * Options several commands share, defined once so their wording, bounds and behaviour agree:
 * where the socket table is read from (census, doctor, exporter), and how a local HTTP server
 * command (exporter, ui) listens, announces itself and stops.
 */
import type { Command } from 'commander';
import { parseChoice, parseHostPort, parseNumberInRange, type HostPort } from '../common/parse.js';
import { option, printJson } from './command.js';

export type TableSource = 'auto' | 'netlink' | 'procfs';

/** `--source auto|netlink|procfs`: netlink sock_diag, or /proc/net/tcp where netlink is denied. */
export function addSourceOption(cmd: Command): Command {
  return cmd.option(
    '--source <source>',
    'where to read the socket table: auto (netlink, /proc/net/tcp if denied), netlink, procfs',
    option((t) => parseChoice(t, '--source', ['auto', 'netlink', 'procfs'] as const)),
    'auto',
  );
}

export interface LocalServerFlags {
  listen: HostPort;
  duration?: number;
  json?: boolean;
}

/** `--listen HOST:PORT` (loopback default), `--duration S`, `--json` for a local HTTP server. */
export function addLocalServerOptions(cmd: Command, defaultListen: string): Command {
  return cmd
    .option(
      '--listen <host:port>',
      'address to serve on (loopback by default; any other address prints a warning)',
      option((t) => parseHostPort(t, '--listen', { allowZeroPort: true })),
      parseHostPort(defaultListen, '--listen'),
    )
    .option(
      '--duration <seconds>',
      'stop after this long (default: until SIGINT/SIGTERM)',
      option((t) => parseNumberInRange(t, '--duration', 0.1, 31_536_000)),
    )
    .option('--json', 'print one JSON document ({"url": ...}) on stdout once listening');
}

/**
 * Start a local server, warn when it listens beyond loopback (`exposes`: what a stranger could
 * then see), announce its URL, and keep it until SIGINT/SIGTERM or --duration.
 */
export async function serveUntilStopped(
  flags: LocalServerFlags,
  opts: { name: string; verb: string; exposes: string },
  start: () => Promise<{ url: string; close(): Promise<void> }>,
): Promise<void> {
  const { isLoopback } = await import('../exporter/server.js');
  if (!isLoopback(flags.listen.host)) {
    process.stderr.write(
      `twlab: warning: --listen ${flags.listen.host} is not loopback: anyone who reaches it ${opts.exposes}\n`,
    );
  }
  const server = await start();
  if (flags.json) printJson({ url: server.url });
  else process.stderr.write(`twlab ${opts.name}: ${opts.verb} ${server.url}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
    if (flags.duration !== undefined) setTimeout(resolve, flags.duration * 1000).unref();
  });
  await server.close();
}
