/**
 * Options several commands share, defined once so their wording, bounds and behaviour agree:
 * where the socket table is read from (census, doctor, exporter), and how a local HTTP server
 * command (exporter, ui) listens, announces itself and stops.
 */
import type { Command } from 'commander';
import { parseChoice, parseHostPort, parseNumberInRange, show, type HostPort } from '../common/parse.js';
import { UsageError } from '../common/errors.js';
import { onInterrupt } from '../common/exit.js';
import { parseAllowHost } from '../common/http-guard.js';
import { option, printJson, repeatable } from './command.js';

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

/** `--window S`: the window over which new TIME_WAIT sockets give the recent rate (census, doctor). */
export function addRateWindowOption(cmd: Command): Command {
  return cmd.option(
    '--window <seconds>',
    'window for the rate of new TIME_WAIT sockets (from their age)',
    option((t) => parseNumberInRange(t, '--window', 1, 60)),
    10,
  );
}

/** Which network namespaces a command reads: its own (default), one (`--netns`), or all (`-A`). */
export interface NetnsFlags {
  allNamespaces?: boolean;
  netns?: string;
}

/** "1234" (a pid) or an absolute path (/proc/PID/ns/net, /run/netns/NAME); checked for syntax here. */
export function parseNetnsSpec(text: string): string {
  if (/^[1-9]\d{0,6}$/.test(text) || (text.startsWith('/') && text.length < 4096 && !text.includes('\0')))
    return text;
  throw new UsageError(
    `--netns: ${show(text)} is not a PID or an absolute path (accepted: 1234, /proc/1234/ns/net, /run/netns/NAME)`,
  );
}

/** `-A/--all-namespaces` and `--netns PID|PATH` (one or the other). */
export function addNetnsOptions(cmd: Command): Command {
  return cmd
    .option('-A, --all-namespaces', 'every network namespace on the host, one per container/pod/service')
    .option(
      '--netns <pid|path>',
      "one network namespace: a process's (PID) or a mount such as /run/netns/NAME",
      option(parseNetnsSpec),
    );
}

/** The two options exclude each other. */
export function checkNetnsFlags(flags: NetnsFlags): void {
  if (flags.allNamespaces && flags.netns !== undefined)
    throw new UsageError('--all-namespaces and --netns exclude each other (give one)');
}

export interface LocalServerFlags {
  listen: HostPort;
  allowHost?: string[];
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
      'stop after this long (default: until SIGINT/SIGTERM/SIGHUP, then exit 128+n)',
      option((t) => parseNumberInRange(t, '--duration', 0.1, 31_536_000)),
    )
    .option(
      '--allow-host <name>',
      'also answer requests whose Host header names NAME (a DNS alias of this machine); repeatable',
      repeatable(parseAllowHost),
    )
    .option('--json', 'print one JSON document ({"url": ...}) on stdout once listening');
}

/**
 * Start a local server, warn when it listens beyond loopback (`exposes`: what a stranger could
 * then see), announce its URL, and keep it until --duration or a signal (exit 128+n).
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
  let forgetInterrupt = (): void => undefined;
  await new Promise<void>((resolve) => {
    // A signal closes the server like --duration does; the exit code is then 128+n.
    forgetInterrupt = onInterrupt(() => resolve(), 'finish');
    if (flags.duration !== undefined) setTimeout(resolve, flags.duration * 1000).unref();
  });
  forgetInterrupt();
  await server.close();
}
