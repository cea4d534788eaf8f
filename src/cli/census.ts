/**
 * `twlab census`: the TCP socket table of this network namespace now: counts per state, TIME_WAIT
 * time left, ephemeral-port pressure per destination, kernel counters.
 */
import type { Command } from 'commander';
import { UsageError } from '../common/errors.js';
import { parseIntInRange, parseNumberInRange, parsePort } from '../common/parse.js';
import { TCP_STATE_WORDS, tcpStateNumber } from '../observe/sockdiag-states.js';
import { action, option, printJson, writeOut } from './command.js';
import { addSourceOption, type TableSource } from './shared-options.js';

/** "time-wait,ESTAB" -> kernel state numbers; each word checked. */
export function parseStates(text: string): number[] {
  const words = text
    .split(',')
    .map((w) => w.trim())
    .filter(Boolean);
  if (words.length === 0)
    throw new UsageError(`--state: '${text}' names no state (accepted: ${TCP_STATE_WORDS.join(', ')})`);
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

interface CensusFlags {
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
  addSourceOption(cmd)
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
      '--window <seconds>',
      'window for the rate of new TIME_WAIT sockets (from their age)',
      option((t) => parseNumberInRange(t, '--window', 1, 60)),
      10,
    )
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

Rate and exhaustion: a TIME_WAIT socket entered that state (60 s - time left) ago, so those
entered in the last --window seconds give the recent rate per destination; "exhausted in"
assumes that rate goes on while today's TIME_WAIT sockets expire. Only this side's TIME_WAIT
sockets are seen: connections the peer closed first do not count.`,
    )
    .action(
      action(async (flags: CensusFlags) => {
        // Loaded on use: the CLI's start-up (which every command pays) stays light.
        const { takeCensus } = await import('../observe/census.js');
        const census = takeCensus({
          ...(flags.state ? { states: flags.state } : {}),
          ...(flags.port !== undefined ? { port: flags.port } : {}),
          source: flags.source,
          rateWindowSec: flags.window,
          top: flags.top,
        });
        if (census.fallbackReason) {
          process.stderr.write(`twlab: note: ${census.fallbackReason}; read /proc/net/tcp{,6} instead\n`);
        }
        if (flags.json) printJson(census);
        else writeOut((await import('../observe/census-format.js')).formatCensus(census));
      }),
    );
}
