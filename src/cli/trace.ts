/**
 * `twlab trace`: live TCP state transitions from tracefs (sock:inet_sock_set_state), like bcc's
 * tcpstates, plus the TIME-WAIT phase (looked up with sock_diag) and failed connect() attempts
 * with their errno. Always bounded by --duration; a signal (Ctrl-C) ends it early, it still
 * prints, and exits 128+n.
 */
import type { Command } from 'commander';
import { onInterrupt } from '../common/exit.js';
import { parseNumberInRange, parsePort } from '../common/parse.js';
import {
  MAX_TRACE_MS,
  startTrace,
  type ConnectionTimeline,
  type FailedConnect,
  type Phase,
  type TraceEvent,
  type TraceResult,
  type Transition,
} from '../observe/trace.js';
import type { Endpoint } from '../observe/sockdiag.js';
import type { Owner } from '../observe/namespaces.js';
import { NetnsOwners } from '../observe/netns-owners.js';
import { action, option, printJson } from './command.js';
import { slowConnectLine, synSummaryLine } from './syn-retransmits-format.js';
import {
  conntrackEventLine,
  conntrackRequest,
  conntrackSummaryLine,
  type ConntrackFlags,
} from './conntrack-events-format.js';
import { startConntrackEvents, type RunningConntrackEvents } from '../observe/conntrack-events.js';

interface TraceFlags extends ConntrackFlags {
  port?: number;
  duration: number;
  json?: boolean;
}

function endpoint(e: Endpoint, family: 4 | 6): string {
  return family === 6 ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}

function ms(n: number | undefined): string {
  if (n === undefined) return '?';
  if (n >= 10_000) return `${(n / 1000).toFixed(1)} s`;
  return n >= 100 ? `${n.toFixed(0)} ms` : `${n.toFixed(3)} ms`;
}

/** The owner's pid, "?" where it cannot be known (see ConnectionTimeline.pidFrom). */
function pidText(pid: number): string {
  return pid === 0 ? '?' : String(pid);
}

const HEADER =
  'TIME(s)    PID      TASK             LOCAL                  REMOTE                 OLD -> NEW                MS\n';

function transitionLine(t: Transition, startMs: number): string {
  const time = ((t.timeMs - startMs) / 1000).toFixed(3).padEnd(10);
  const states = `${t.oldState} -> ${t.newState}`.padEnd(25);
  const mark = t.source === 'sock_diag' ? '  [sock_diag]' : '';
  const note = t.note ? `  (${t.note})` : '';
  const left = t.expiresMs !== undefined ? `  ${ms(t.expiresMs)} left` : '';
  return (
    `${time} ${pidText(t.pid).padEnd(8)} ${t.task.slice(0, 16).padEnd(16)} ` +
    `${endpoint(t.local, t.family).padEnd(22)} ${endpoint(t.remote, t.family).padEnd(22)} ` +
    `${states} ${ms(t.inOldStateMs).padStart(10)}${left}${mark}${note}\n`
  );
}

function phaseText(p: Phase): string {
  return p.durationMs === undefined ? p.state : `${p.state} ${ms(p.durationMs)}`;
}

function timelineLines(c: ConnectionTimeline): string {
  const owner = c.pidFrom === 'unknown' ? 'owner unknown' : `${c.task}/${c.pid}`;
  const ns = c.netns === undefined ? '' : `, netns ${c.netns}`;
  const who = `${c.role}, ${owner}${ns}${c.closedFirst ? ', closed first' : ''}`;
  let tw = '';
  if (c.timeWait) {
    const t = c.timeWait;
    tw =
      t.endReason === 'trace-ended'
        ? `; TIME-WAIT still there at trace end (timer: ${ms(t.expectedEndMs - t.enteredMs)} after entry)`
        : `; TIME-WAIT ended ${t.endReason}: after ${ms((t.endedMs ?? 0) - t.enteredMs)}, its timer said ${ms(t.expectedEndMs - t.enteredMs)}`;
  }
  return (
    `  connection ${endpoint(c.local, c.family)} -> ${endpoint(c.remote, c.family)} (${who})` +
    `${c.complete ? '' : ' [unfinished]'}: ${c.phases.map(phaseText).join(' > ')}${tw}` +
    `${c.note ? ` (${c.note})` : ''}\n`
  );
}

function failedLine(f: FailedConnect, startMs: number): string {
  const time = ((f.timeMs - startMs) / 1000).toFixed(3).padEnd(10);
  const errno = f.errno === null ? 'errno unknown (no syscalls:sys_exit_connect)' : `${f.errno} (${f.code})`;
  return `${time} ${pidText(f.pid).padEnd(8)} ${f.task.slice(0, 16).padEnd(16)} connect() to ${endpoint(f.remote, f.family)} failed: ${errno}\n`;
}

/** The namespaces the connections were in, with their owners (container, pod, service) where known. */
function namespacesOf(r: TraceResult): { inode: number; owner: Owner | null }[] {
  const owners = new NetnsOwners();
  const inodes = new Set(r.connections.map((c) => c.netns).filter((n): n is number => n !== undefined));
  return [...inodes].map((inode) => ({ inode, owner: owners.info(inode)?.owner ?? null }));
}

function summary(r: TraceResult): string {
  const tw = r.connections.filter((c) => c.timeWait).length;
  return (
    `${r.transitions.length} transitions, ${r.connections.length} connections ` +
    `(${tw} with a TIME-WAIT phase), ${r.failedConnects.length} failed connect()\n`
  );
}

const TRACE_HELP = `
One line per state change (like bcc's tcpstates): time since start, the pid and command of the
process that owns the socket (the task of its connect() or close(), else its listener's holder;
? where unknown: the kernel runs much of TCP in whichever task is on the CPU), local and remote
address, old -> new state (ss names), and how long the socket was in the old state.
Lines marked [sock_diag] are the TIME-WAIT phase, which no tracepoint reports: twlab finds the
minisocket with sock_diag (in this network namespace) and watches it leave the table.
When a connection is over, its timeline follows. A connect that sent its SYN again
(tcp:tcp_retransmit_skb), took 500 ms or more, or gave up in SYN-SENT gets a line with its
duration and SYN retransmits: a stall or timeout behind a NAT shows so. Needs root (tracefs).

Examples:
  twlab trace --port 8080                 # 10 s of transitions on port 8080
  twlab trace --port 8080 --duration 70   # long enough to see TIME-WAIT expire (60 s)
  twlab trace --json --duration 5 > t.json
  twlab sandbox -- twlab trace --port 8080   # inside a sandbox: TIME-WAIT lookups see its sockets
  twlab trace --port 8080 --conntrack --duration 30   # plus this namespace's conntrack NEW/DESTROY
  twlab sandbox --nat 40000-40009 -- sh -c 'twlab trace --port 8080 --conntrack-netns $TWLAB_ROUTER_PID'
                                          # the NAT router's events, with the NAT port each got
Conntrack events need CAP_NET_ADMIN in that namespace; a full receive buffer loses events,
which is reported (lost.overruns in the JSON, a warning otherwise), never silent.`;

/** `twlab trace`: live lines, or one JSON document at the end. */
async function runTrace(flags: TraceFlags): Promise<void> {
  const ctAsked = conntrackRequest(flags); // bad conntrack flags: exit 2 before anything starts
  const live = !flags.json;
  let startMs = 0;
  const onEvent = (ev: TraceEvent): void => {
    if (!live) return;
    if (ev.kind === 'transition') process.stdout.write(transitionLine(ev, startMs));
    else if (ev.kind === 'connection') process.stdout.write(timelineLines(ev));
    else process.stdout.write(failedLine(ev, startMs));
  };
  const trace = await startTrace({
    port: flags.port,
    durationMs: flags.duration * 1000,
    onEvent,
    onSlowConnect: (c) => live && process.stdout.write(slowConnectLine(c, startMs)),
  });
  startMs = trace.startedMs;
  let ct: RunningConntrackEvents | undefined;
  try {
    ct = ctAsked
      ? startConntrackEvents(
          {
            ...ctAsked,
            port: flags.port,
            durationMs: flags.duration * 1000 + 10_000,
            maxEvents: 1_000_000,
            keep: !live,
          },
          (e) => live && process.stdout.write(conntrackEventLine(e, startMs)),
        )
      : undefined;
  } catch (err) {
    await trace.stop().catch(() => undefined);
    throw err;
  }
  // A signal ends the trace early; its result is printed as usual, the exit code is 128+n.
  const forgetInterrupt = onInterrupt(() => void trace.stop().catch(() => undefined), 'finish');
  process.stderr.write(
    `twlab trace: ${flags.port === undefined ? 'all ports' : `port ${flags.port}`}, ` +
      `${flags.duration} s (Ctrl-C stops), tracefs instance ${trace.instance}\n`,
  );
  if (live) process.stdout.write(HEADER);
  try {
    const result = await trace.done;
    const conntrack = await ct?.stop();
    if (conntrack?.lost.overruns) {
      process.stderr.write(
        `twlab trace: warning: conntrack events were lost (${conntrack.lost.overruns} receive-buffer overruns)\n`,
      );
    }
    if (result.lostEvents > 0) {
      process.stderr.write(
        `twlab trace: warning: the kernel dropped ${result.lostEvents} events (ring buffer full); narrow with --port\n`,
      );
    }
    if (flags.json)
      printJson({
        durationS: flags.duration,
        ...result,
        namespaces: namespacesOf(result),
        ...(conntrack ? { conntrack } : {}),
      });
    else
      process.stdout.write(
        synSummaryLine(result.synRetransmits) +
          (conntrack ? conntrackSummaryLine(conntrack) : '') +
          summary(result),
      );
  } finally {
    forgetInterrupt();
  }
}

export function registerTrace(program: Command): void {
  program
    .command('trace')
    .description(
      'Live TCP state transitions (tracefs), with the TIME-WAIT phase and failed connect() attempts',
    )
    .option(
      '--port <port>',
      'only sockets with this local or remote port',
      option((t) => parsePort(t, '--port')),
    )
    .option(
      '--duration <seconds>',
      `stop after this long (at most ${MAX_TRACE_MS / 1000})`,
      option((t) => parseNumberInRange(t, '--duration', 0.1, MAX_TRACE_MS / 1000)),
      10,
    )
    .option('--json', 'print one JSON document at the end: { transitions, connections, failedConnects }')
    .option(
      '--conntrack',
      'also the conntrack events (NEW, DESTROY, with the NAT port) of this network namespace (--port filters them too)',
    )
    .option(
      '--conntrack-netns <pid|path>',
      "conntrack events of another namespace: a PID's (e.g. a sandbox's $TWLAB_ROUTER_PID) or a path (implies --conntrack)",
    )
    .option('--conntrack-events <types>', 'which conntrack events: new,update,destroy (default new,destroy)')
    .addHelpText('after', TRACE_HELP)
    .action(action(runTrace));
}
