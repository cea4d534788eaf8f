/**
 * `twlab census`: the TCP socket table of this network namespace now: counts per state, TIME_WAIT
 * time left, ephemeral-port pressure per destination, kernel counters.
 */
import type { Command } from 'commander';
import { UsageError } from '../common/errors.js';
import { parseIntInRange, parsePort, show } from '../common/parse.js';
import { TCP_STATE_WORDS, tcpStateNumber } from '../observe/sockdiag-states.js';
import { action, option, printJson, writeOut } from './command.js';
import {
  addNetnsOptions,
  addRateWindowOption,
  addSourceOption,
  checkNetnsFlags,
  type NetnsFlags,
  type TableSource,
} from './shared-options.js';

/** "time-wait,ESTAB" -> kernel state numbers; each word checked. */
export function parseStates(text: string): number[] {
  const words = text
    .split(',')
    .map((w) => w.trim())
    .filter(Boolean);
  if (words.length === 0)
    throw new UsageError(`--state: ${show(text)} names no state (accepted: ${TCP_STATE_WORDS.join(', ')})`);
  return [
    ...new Set(
      words.map((w) => {
        const n = tcpStateNumber(w);
        if (n === undefined)
          throw new UsageError(
            `--state: '${w}' is not a TCP state (accepted: ${TCP_STATE_WORDS.join(', ')})`,
          );
        return n;
      }),
    ),
  ];
}

interface CensusFlags extends NetnsFlags {
  state?: number[];
  port?: number;
  json?: boolean;
  source: TableSource;
  window: number;
  top: number;
}

export function registerCensus(program: Command): void {
  const cmd = program
    .command('census')
    .description(
      "This namespace's TCP sockets now: per state, TIME_WAIT time left, port pressure per destination",
    );
  addRateWindowOption(addNetnsOptions(addSourceOption(cmd)))
    .option(
      '--state <states>',
      'only these states, comma-separated (ss names: time-wait, ESTAB, listening, ...)',
      option(parseStates),
    )
    .option(
      '--port <port>',
      'only sockets with this local or remote port',
      option((t) => parsePort(t, '--port')),
    )
    .option('--json', 'print one JSON document on stdout')
    .option(
      '--top <n>',
      'destinations listed under pressure',
      option((t) => parseIntInRange(t, '--top', 1, 100000)),
      20,
    )
    .addHelpText(
      'after',
      `
Examples:
  twlab census                          all TCP sockets of this namespace
  twlab census --state time-wait --json TIME_WAIT only, as JSON
  twlab census --port 8080              sockets on port 8080 (either end)
  twlab sandbox -- twlab census         inside a fresh namespace
  twlab census -A                       every namespace on the host (containers, pods, services),
                                        the one about to run out of ports first
  twlab census --netns 4242 --json      the namespace of process 4242 (or --netns /run/netns/NAME)

Rate and exhaustion: a TIME_WAIT socket entered that state (60 s - time left) ago, so those
entered in the last --window seconds give the recent rate per destination; "exhausted in"
assumes that rate goes on while today's TIME_WAIT sockets expire. Only this side's TIME_WAIT
sockets are seen: connections the peer closed first do not count.

With -A or --netns, twlab enters each network namespace on one thread to read its table and its
own sysctls (port range, tcp_tw_reuse, ...), and comes straight back; it never changes anything
there. That needs root (CAP_SYS_ADMIN); without it, a namespace of a process twlab may trace is
read through /proc/PID/net (its sysctls unknown: twlab's own port range is assumed, and said so).`,
    )
    .action(
      action(async (flags: CensusFlags) => {
        checkNetnsFlags(flags);
        const opts = {
          ...(flags.state ? { states: flags.state } : {}),
          ...(flags.port !== undefined ? { port: flags.port } : {}),
          source: flags.source,
          rateWindowSec: flags.window,
          top: flags.top,
        };
        if (flags.allNamespaces || flags.netns !== undefined) return namespaces(flags, opts);
        // Loaded on use: the CLI's start-up (which every command pays) stays light.
        const { takeCensus } = await import('../observe/census.js');
        const census = takeCensus(opts);
        if (census.fallbackReason) {
          process.stderr.write(`twlab: note: ${census.fallbackReason}; read /proc/net/tcp{,6} instead\n`);
        }
        if (flags.json) printJson(census);
        else writeOut((await import('./census-format.js')).formatCensus(census));
      }),
    );
}

type Opts = Omit<import('../observe/census.js').CensusOptions, 'ports' | 'procNet'>;

/** -A and --netns: one row per namespace, or one namespace's census with who it is. */
async function namespaces(flags: CensusFlags, opts: Opts): Promise<number> {
  const { discoverNetns } = await import('../observe/namespaces.js');
  const all = await import('../observe/census-all.js');
  const { discoveryNotes, orFail, resolveNetns } = await import('../observe/netns-read.js');
  const format = await import('./census-all-format.js');
  const found = discoverNetns();
  if (flags.netns !== undefined) {
    const ns = resolveNetns(flags.netns, found.namespaces);
    const census = orFail(flags.netns, all.censusOfNetns(ns, opts));
    if (flags.json) printJson(census);
    else writeOut(format.formatNetnsCensus(census));
    return 0;
  }
  for (const line of discoveryNotes(found)) process.stderr.write(`twlab: note: ${line}\n`);
  const host = all.takeHostCensus(found.namespaces, opts);
  for (const s of host.host.skipped)
    process.stderr.write(`twlab: skipped network namespace ${s.inode}: ${s.reason}: ${s.message}\n`);
  for (const n of host.namespaces)
    if (n.fallbackReason)
      process.stderr.write(`twlab: note: namespace ${n.netns.inode}: ${n.fallbackReason}\n`);
  if (flags.json) printJson(host);
  else writeOut(format.formatHostCensus(host));
  return 0;
}
