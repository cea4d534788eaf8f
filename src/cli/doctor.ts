/**
 * `twlab doctor`: findings about TCP teardown in this namespace, with evidence and ranked fixes;
 * with --port, who holds the port and whether a restart would bind.
 */
import type { Command } from 'commander';
import { parseHost, parsePort, parsePortRange, type PortRange } from '../common/parse.js';
import { action, option, printJson } from './command.js';
import { UsageError } from '../common/errors.js';
import {
  addNetnsOptions,
  addRateWindowOption,
  addSourceOption,
  checkNetnsFlags,
  type NetnsFlags,
  type TableSource,
} from './shared-options.js';

interface DoctorFlags extends NetnsFlags {
  port?: number;
  address?: string;
  tryBind?: boolean;
  json?: boolean;
  source: TableSource;
  window: number;
  natRange?: PortRange;
}

export function registerDoctor(program: Command): void {
  const cmd = program
    .command('doctor')
    .description(
      'Findings on this host (its network namespace), each with the numbers seen and fixes ranked by benefit and cost',
    );
  addRateWindowOption(addNetnsOptions(addSourceOption(cmd)))
    .option(
      '--port <port>',
      'also report who holds this local port and whether a server restart would bind',
      option((t) => parsePort(t, '--port')),
    )
    .option(
      '--address <ip>',
      'the address a restarting server binds (with --port; default 0.0.0.0)',
      option((t) => parseHost(t, '--address')),
    )
    .option('--try-bind', 'with --port: also really try both binds (bind, then close at once; never listens)')
    .option(
      '--nat-range <A-B>',
      "the source NAT's port range, for its pool findings (default: 1024-65535, nf_nat's pool when a rule gives none)",
      option((t) => parsePortRange(t, '--nat-range')),
    )
    .option('--json', 'print one JSON document on stdout')
    .addHelpText(
      'after',
      `
Examples:
  twlab doctor                         findings and fixes for this namespace
  twlab doctor --port 8080             who holds 8080; would a restart bind?
  twlab doctor --port 8080 --try-bind  ... and check by binding for real
  twlab doctor --json
  twlab doctor -A                      every namespace on the host, worst first, named by container
  twlab doctor -A --port 8080          who holds 8080, in every namespace
  twlab doctor --netns 4242            the namespace of process 4242

Doctor only reads (the socket table, /proc/sys, /proc/net counters); it never changes a setting.
With -A/--netns it enters each namespace on one thread to read there (root needed), and
refuses --try-bind, which would bind a socket in it.`,
    )
    .action(
      action(async (flags: DoctorFlags) => {
        checkNetnsFlags(flags);
        if (flags.port === undefined && (flags.tryBind || flags.address !== undefined))
          throw new UsageError(
            `${flags.tryBind ? '--try-bind' : '--address'} is about a restart on a port: give --port too`,
          );
        const opts = {
          ...(flags.port !== undefined ? { port: flags.port } : {}),
          ...(flags.address ? { bindAddress: flags.address } : {}),
          source: flags.source,
          rateWindowSec: flags.window,
          ...(flags.natRange ? { natRange: flags.natRange } : {}),
        };
        if (flags.allNamespaces || flags.netns !== undefined) {
          if (flags.tryBind)
            throw new UsageError(
              '--try-bind binds a socket: twlab only reads in other namespaces (drop -A/--netns)',
            );
          return namespaces(flags, opts);
        }
        // Loaded on use: the CLI's start-up (which every command pays) stays light.
        const { runDoctor } = await import('../observe/doctor.js');
        const { formatDoctor } = await import('./doctor-format.js');
        const result = runDoctor({ ...opts, ...(flags.tryBind ? { tryBind: true } : {}) });
        if (result.census.fallbackReason) {
          process.stderr.write(
            `twlab: note: ${result.census.fallbackReason}; read /proc/net/tcp{,6} instead\n`,
          );
        }
        if (flags.json) printJson(result);
        else process.stdout.write(formatDoctor(result));
      }),
    );
}

/** -A and --netns: findings per namespace, worst first, each headed by who owns it. */
async function namespaces(
  flags: DoctorFlags,
  opts: import('../observe/doctor.js').DoctorOptions,
): Promise<number> {
  const { discoverNetns } = await import('../observe/namespaces.js');
  const { doctorOfNetns, runHostDoctor } = await import('../observe/doctor-all.js');
  const { discoveryNotes, orFail, resolveNetns } = await import('../observe/netns-read.js');
  const { formatHostDoctor, formatNetnsDoctor } = await import('./doctor-format.js');
  const found = discoverNetns();
  if (flags.netns !== undefined) {
    const one = orFail(flags.netns, doctorOfNetns(resolveNetns(flags.netns, found.namespaces), opts));
    if (flags.json) printJson(one);
    else process.stdout.write(formatNetnsDoctor(one));
    return 0;
  }
  for (const line of discoveryNotes(found)) process.stderr.write(`twlab: note: ${line}\n`);
  const host = runHostDoctor(found.namespaces, opts);
  for (const s of host.host.skipped)
    process.stderr.write(`twlab: skipped network namespace ${s.inode}: ${s.reason}: ${s.message}\n`);
  if (flags.json) printJson(host);
  else process.stdout.write(formatHostDoctor(host));
  return 0;
}
