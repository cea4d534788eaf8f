/**
 * `twlab doctor`: findings about TCP teardown in this namespace, with evidence and ranked fixes;
 * with --port, who holds the port and whether a restart would bind.
 */
import type { Command } from 'commander';
import { parseHost, parsePort } from '../common/parse.js';
import { action, option, printJson } from './command.js';
import { addSourceOption, type TableSource } from './shared-options.js';

interface DoctorFlags {
  port?: number;
  address?: string;
  tryBind?: boolean;
  json?: boolean;
  source: TableSource;
}

export function registerDoctor(program: Command): void {
  const cmd = program
    .command('doctor')
    .description(
      'Findings on this host (its network namespace), each with the numbers seen and fixes ranked by benefit and cost',
    );
  addSourceOption(cmd)
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
    .option('--json', 'print one JSON document on stdout')
    .addHelpText(
      'after',
      `
Examples:
  twlab doctor                         findings and fixes for this namespace
  twlab doctor --port 8080             who holds 8080; would a restart bind?
  twlab doctor --port 8080 --try-bind  ... and check by binding for real
  twlab doctor --json

Doctor only reads (the socket table, /proc/sys, /proc/net counters); it never changes a setting.`,
    )
    .action(
      action(async (flags: DoctorFlags) => {
        // Loaded on use: the CLI's start-up (which every command pays) stays light.
        const { runDoctor } = await import('../observe/doctor.js');
        const { formatDoctor } = await import('../observe/doctor-format.js');
        const result = runDoctor({
          ...(flags.port !== undefined ? { port: flags.port } : {}),
          ...(flags.address ? { bindAddress: flags.address } : {}),
          ...(flags.tryBind ? { tryBind: true } : {}),
          source: flags.source,
        });
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
