/**
 * `twlab top`: who churns. The tracer (observe/trace.ts) with its events counted per owning
 * process (observe/top.ts), joined every interval with each namespace's census and owner
 * (observe/top-view.ts): a table per interval, or one JSON document at the end. Bounded by
 * --duration (default: the tracer's hour); a signal (Ctrl-C) or q on a terminal ends it early and it
 * still prints (a signal: exit 128+n).
 */
import type { Command } from 'commander';
import { onInterrupt } from '../common/exit.js';
import { parseIntInRange, parseNumberInRange, parsePort } from '../common/parse.js';
import { takeCensus, type PressureEntry } from '../observe/census.js';
import { censusOfNetns } from '../observe/census-all.js';
import { NetnsOwners } from '../observe/netns-owners.js';
import { TopCounter } from '../observe/top.js';
import { formatTop } from './top-format.js';
import { topView, type NetnsFacts, type SortKey, type TopDocument } from '../observe/top-view.js';
import { DEFAULT_BUFFER_KB, MAX_TRACE_MS, startTrace } from '../observe/trace.js';
import { currentNetnsInode } from '../sockets/netns.js';
import { action, option, printJson } from './command.js';

interface TopFlags {
  allNamespaces?: boolean;
  port?: number;
  interval: number;
  duration?: number;
  rows: number;
  json?: boolean;
  bufferKb?: number;
}

/** Destinations the census lists per namespace (the join needs more than the census's top 20). */
const CENSUS_TOP = 1000;

/** The census and owner of each namespace with rows, read once per interval. */
function netnsFacts(owners: NetnsOwners, self: number): NetnsFacts {
  const pressure = new Map<number | null, readonly PressureEntry[] | undefined>();
  return {
    pressure(netns) {
      if (netns === null) return undefined;
      if (!pressure.has(netns)) {
        let entries: readonly PressureEntry[] | undefined;
        if (netns === self) entries = takeCensus({ top: CENSUS_TOP }).pressure;
        else {
          const info = owners.info(netns);
          const c = info ? censusOfNetns(info, { top: CENSUS_TOP }) : undefined;
          entries = c && 'pressure' in c ? c.pressure : undefined;
        }
        pressure.set(netns, entries);
      }
      return pressure.get(netns);
    },
    owner: (netns) => (netns === null ? null : (owners.info(netns)?.owner ?? null)),
  };
}

// Long (~130 lines) on purpose: its options with their help text, then the action that wires a live
// view (tracer, counter, owners, terminal, signals); each part is its own module (observe/top.ts,
// observe/top-view.ts, cli/top-format.ts).
// eslint-disable-next-line max-lines-per-function -- long on purpose, as said above
export function registerTop(program: Command): void {
  program
    .command('top')
    .description('Who churns: connects, failed connects, closes, accepts and TIME-WAIT per process, live')
    .option('-A, --all-namespaces', 'every network namespace on the host, grouped per container/pod/service')
    .option(
      '--port <port>',
      'only connections with this local or remote port (filtered in the kernel: a busy host loses no events)',
      option((t) => parsePort(t, '--port')),
    )
    .option(
      '--interval <seconds>',
      'refresh every this long',
      option((t) => parseNumberInRange(t, '--interval', 0.2, 3600)),
      2,
    )
    .option(
      '--duration <seconds>',
      `stop after this long (default and at most ${MAX_TRACE_MS / 1000}; Ctrl-C stops earlier)`,
      option((t) => parseNumberInRange(t, '--duration', 0.1, MAX_TRACE_MS / 1000)),
    )
    .option(
      '--rows <n>',
      'processes shown per table',
      option((t) => parseIntInRange(t, '--rows', 1, 1000)),
      20,
    )
    .option(
      '--buffer-kb <kb>',
      `trace ring buffer per CPU in KB (default ${DEFAULT_BUFFER_KB})`,
      option((t) => parseIntInRange(t, '--buffer-kb', 4, 1048576)),
    )
    .option('--json', 'print one JSON document at the end (no tables)')
    .addHelpText(
      'after',
      `
Each connection counts for the process that owns its socket: the task of its connect() or
close() (the kernel runs the rest of a connection in whichever task is on the CPU), or the
holder of its listener; pid ? where it cannot be known. TW: TIME-WAIT sockets it created that
are still there. Held/out in: ports of the namespace's range held towards the destination and
when connect() to it runs out at the current rate (census). Events lost by a full trace buffer
are reported, never hidden. On a terminal: q quits; r, c, f, t sort by risk (the default:
soonest exhaustion, then failures, TIME-WAIT, active closes), connects/s, failures, TIME-WAIT.
Needs root (tracefs).

Examples:
  twlab top                          # this namespace, every 2 s, until Ctrl-C
  twlab top -A --interval 5          # every namespace, grouped by container / pod
  twlab top --port 5432              # only connections to or from port 5432
  twlab top --duration 30 --json > churn.json`,
    )
    .action(
      action(async (flags: TopFlags) => {
        const self = currentNetnsInode();
        const counter = new TopCounter(
          (netns) => flags.allNamespaces || netns === undefined || netns === self,
        );
        const owners = new NetnsOwners();
        const durationMs = (flags.duration ?? MAX_TRACE_MS / 1000) * 1000;
        const trace = await startTrace({
          durationMs,
          port: flags.port,
          keep: false,
          phases: false, // the counter reads no timeline
          bufferKb: flags.bufferKb ?? DEFAULT_BUFFER_KB, // also with --port: bursts need room
          onEvent: (ev) => counter.add(ev),
        });
        const tty = process.stdout.isTTY && !flags.json;
        const stop = (): void => void trace.stop().catch(() => undefined);
        // A signal ends it early; the last table (or the JSON) is printed as usual, exit 128+n.
        const forgetInterrupt = onInterrupt(stop, 'finish');
        // Keys as top's: q quits; r, c, f, t sort by risk, connects/s, failed connects, TIME-WAIT.
        let sort: SortKey = 'risk';
        const KEYS: Record<string, SortKey> = { r: 'risk', c: 'connects', f: 'failed', t: 'timeWait' };
        const onKey = (d: Buffer): void => {
          if (d.includes(0x71) || d.includes(0x03)) stop(); // q, Ctrl-C in raw mode
          const key = KEYS[d.toString('latin1').slice(-1)];
          if (key) sort = key;
        };
        if (tty && process.stdin.isTTY) {
          process.stdin.setRawMode(true);
          process.stdin.on('data', onKey);
        }
        process.stderr.write(
          `twlab top: ${flags.allNamespaces ? 'every namespace' : 'this namespace'}, every ${flags.interval} s ` +
            `(${tty ? 'q stops; sort: r risk, c connects, f failed, t TIME-WAIT' : 'Ctrl-C stops'}), ` +
            `tracefs instance ${trace.instance}\n`,
        );
        let lastMs = trace.startedMs;
        const doc = (nowMs: number, lost: number, bufferKb?: number): TopDocument => {
          const intervalS = Math.max(0.001, (nowMs - lastMs) / 1000);
          lastMs = nowMs;
          return {
            durationMs: Math.round(nowMs - trace.startedMs),
            intervalMs: flags.interval * 1000,
            processes: topView(counter.snapshot(), intervalS, netnsFacts(owners, self), sort),
            lost: {
              events: lost,
              reason:
                lost > 0
                  ? `the trace ring buffer${bufferKb ? ` (${bufferKb} KB per CPU)` : ''} was full: events overwritten before twlab read them; counts are short`
                  : null,
            },
            droppedRows: counter.droppedRows,
          };
        };
        const now = (): number => Number(process.hrtime.bigint()) / 1e6;
        const tick = setInterval(() => {
          if (flags.json) return;
          const text = formatTop(doc(now(), trace.lostEvents()), flags.rows, self);
          process.stdout.write(tty ? `\x1b[H\x1b[2J${text}` : `${text}\n`);
        }, flags.interval * 1000);
        try {
          const result = await trace.done;
          const final = {
            ...doc(result.endedMs, result.lostEvents, result.bufferKb),
            eventsRead: result.eventsRead,
          };
          if (flags.json) printJson(final);
          else process.stdout.write(formatTop(final, flags.rows, self));
        } finally {
          clearInterval(tick);
          forgetInterrupt();
          if (tty && process.stdin.isTTY) {
            process.stdin.setRawMode(false);
            process.stdin.off('data', onKey);
            process.stdin.pause();
          }
        }
      }),
    );
}
