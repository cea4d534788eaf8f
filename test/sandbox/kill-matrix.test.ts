/**
 * The kill matrix: every long-running command x SIGINT, SIGTERM, SIGKILL, all runs at once. Afterwards nothing of a run is left: no process of its tree (as it was when
 * signalled), no process in its network namespaces (a sandbox's veth pair lives in them and dies
 * with them), no tracefs instance, no mount (of its namespaces, or a tracefs one), no file in its TMPDIR (which also holds lab's
 * --html file). SIGINT and SIGTERM, which twlab can handle, exit 130 and 143 with one line
 * "twlab: interrupted" and the command's partial summary; SIGKILL leaves a tracefs instance that
 * the next run removes (checked here with the next `twlab trace`).
 *
 * A new long-running command (e.g. `top`) joins the matrix with one entry in SUBJECTS.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import { CLI, runCli } from '../helpers/cli.js';
import {
  describeNs,
  descendants,
  itNs,
  ownNetns,
  processesInNetnsSince,
  procInfo,
  stillAlive,
  ticksNow,
  waitFor,
  type ProcInfo,
} from '../helpers/sandbox.js';

const INSTANCES = '/sys/kernel/tracing/instances';
const haveTracefs = existsSync(INSTANCES) && process.getuid?.() === 0;

/** One run of a command, as the matrix watches it. */
interface Run {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  /** Its process tree now (without itself). */
  tree(): ProcInfo[];
}

interface Subject {
  name: string;
  args(ctx: { tmp: string; port: number }): string[];
  /** In its steady state: worth interrupting (a sandbox up, a server listening, a trace running). */
  ready(run: Run): boolean;
  /** Only ready while it holds a tracefs instance (where there is tracefs). */
  traces?: boolean;
  /** What it prints on stdout when SIGINT/SIGTERM stop it: its partial summary. */
  partial?: RegExp;
  /** `sandbox -- CMD` passes signals on to CMD like a shell: no line of its own. */
  passesSignals?: boolean;
}

const has = (run: Run, text: string): boolean => run.tree().some((p) => p.cmdline.includes(text));

const SUBJECTS: Subject[] = [
  {
    name: 'lab --html',
    args: ({ tmp }) => ['lab', '--only', 'S0-04', '--html', join(tmp, 'report.html')],
    ready: (r) => has(r, 'sandbox/agent.js'),
    traces: true,
    partial: /^S0-04 {2}NOT-TESTED/m,
  },
  {
    name: 'churn --sandbox',
    args: () => ['churn', '--sandbox', '--to', '127.0.0.1:8080', '--duration', '60', '--rate', '200'],
    // Interrupt once 100 connections are in TIME-WAIT: the churn has reported progress by then
    // (every 200 ms; 100 connections take 500 ms at this rate).
    ready: (r) => timeWaitsBeside(r, 'main.js serve') >= 100,
    partial: /^churn interrupted after [\d.]+ s: [1-9]\d* attempted/m,
  },
  {
    name: 'sandbox',
    args: () => ['sandbox', '--hosts', '2', '--', 'sleep', '100'],
    ready: (r) => r.tree().some((p) => p.cmdline === 'sleep 100'),
    passesSignals: true,
  },
  {
    name: 'trace',
    args: ({ port }) => ['trace', '--duration', '60', '--port', String(port)],
    ready: (r) => r.stderr.includes('tracefs instance'),
    traces: true,
    partial: /^0 transitions, 0 connections/m,
  },
  {
    name: 'top',
    args: ({ port }) => ['top', '--port', String(port)],
    ready: (r) => r.stderr.includes('tracefs instance'),
    traces: true,
    partial: /^twlab top \d/m,
  },
  {
    name: 'serve',
    args: ({ port }) => ['serve', '--listen', `127.0.0.1:${port}`],
    ready: (r) => r.stdout.includes('listening on'),
    partial: /^stopped \(signal\) after/m,
  },
  {
    name: 'ui',
    args: () => ['ui', '--listen', '127.0.0.1:0'],
    ready: (r) => r.stderr.includes('twlab ui: open'),
  },
  {
    name: 'exporter',
    args: () => ['exporter', '--listen', '127.0.0.1:0'],
    ready: (r) => r.stderr.includes('twlab exporter: serving'),
  },
];

/** TIME-WAIT sockets in the network namespace of the run's process whose cmdline has `text`. */
function timeWaitsBeside(run: Run, text: string): number {
  const p = run.tree().find((x) => x.cmdline.includes(text));
  if (!p) return 0;
  try {
    const rows = readFileSync(`/proc/${p.pid}/net/tcp`, 'utf8').trim().split('\n').slice(1);
    return rows.filter((row) => row.trim().split(/\s+/)[3] === '06').length;
  } catch {
    return 0; // gone meanwhile
  }
}

/** twlab's instances whose label is a pid of this run's tree (`twlab-<pid>-<random>`). */
function instancesOf(run: Run): string[] {
  if (!haveTracefs) return [];
  const pids = [run.child.pid!, ...run.tree().map((p) => p.pid)];
  return readdirSync(INSTANCES).filter((n) => pids.some((p) => n.startsWith(`twlab-${p}-`)));
}

/**
 * Distinct ports per run (trace filters, serve listeners), away from other test files' and below
 * this machine's ephemeral range: serve listens in the host's own namespace, where every test
 * file's loopback clients (and their TIME-WAIT) take ephemeral ports, and a listener on one of
 * them would fail with EADDRINUSE. 24 runs per file: 25 ports per slot, 400 slots by pid.
 */
const EPHEMERAL_LOW = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').split(/\s+/)[0]);
const PORT_BASE = 20_000 + (process.pid % 400) * 25;
let nextPort = PORT_BASE;

interface Outcome {
  subject: Subject;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  procs: ProcInfo[];
  netns: Set<string>;
  instances: string[];
  tmp: string;
  /** When the signal was sent, in ticks (see ticksNow). */
  signalledAt: number;
}

/** Every run's TMPDIR, removed after the file whatever happened. */
const tmpDirs: string[] = [];
afterAll(() => {
  for (const dir of tmpDirs) rmSync(dir, { recursive: true, force: true });
});

/** Start one subject, wait for its steady state, send `signal`, and collect what it left. */
async function runOne(subject: Subject, signal: NodeJS.Signals): Promise<Outcome> {
  const tmp = mkdtempSync(join(tmpdir(), 'twlab-kill-'));
  tmpDirs.push(tmp);
  const child = spawn(process.execPath, [CLI, ...subject.args({ tmp, port: nextPort++ })], {
    env: { ...process.env, TMPDIR: tmp },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const run: Run = { child, stdout: '', stderr: '', tree: () => descendants(child.pid!) };
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (run.stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (run.stderr += d));
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.on('close', (code, sig) => resolve([code, sig])),
  );
  try {
    // The instances are read in the same poll that saw the run ready: lab traces one close
    // sequence at a time, and between two the instance is gone (a CI run once read it later).
    let instances: string[] = [];
    const ready = await waitFor(
      () => {
        if (child.exitCode !== null || !subject.ready(run)) return false;
        instances = instancesOf(run);
        return !(subject.traces && haveTracefs) || instances.length > 0;
      },
      60_000,
      50,
    );
    expect(ready, `${subject.name} never got ready: ${run.stderr}`).toBe(true);
    const procs = [procInfo(child.pid!)!, ...run.tree()];
    const netns = new Set(procs.map((p) => p.netns).filter((n) => n !== ownNetns));
    const signalledAt = ticksNow();
    child.kill(signal);
    const [code, sig] = await exited;
    return {
      subject,
      code,
      signal: sig,
      stdout: run.stdout,
      stderr: run.stderr,
      procs,
      netns,
      instances,
      tmp,
      signalledAt,
    };
  } finally {
    child.kill('SIGKILL');
  }
}

function leftInstances(o: Outcome): string[] {
  return o.instances.filter((n) => existsSync(join(INSTANCES, n)));
}

/** Processes in the run's network namespaces that started before it was signalled. */
function inItsNetns(o: Outcome): ProcInfo[] {
  return processesInNetnsSince(o.netns, o.signalledAt);
}

async function expectNothingLeft(o: Outcome): Promise<void> {
  const what = o.subject.name;
  const gone = await waitFor(() => stillAlive(o.procs).length === 0 && inItsNetns(o).length === 0, 10_000);
  const survivors = [...stillAlive(o.procs), ...inItsNetns(o)].map((p) => p.cmdline);
  expect(gone, `${what}: survivors ${survivors.join('; ')}`).toBe(true);
  expect(readdirSync(o.tmp), `${what}: files left in its TMPDIR`).toEqual([]);
}

/** Mounts of the runs' namespaces (nsfs, by inode) and every tracefs mount: what twlab could leave. */
function twlabMounts(netns: ReadonlySet<string>): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .trim()
    .split('\n')
    .map((line) => line.split(' '))
    .filter((f) => {
      const type = f[f.indexOf('-') + 1];
      return type === 'tracefs' || (type === 'nsfs' && netns.has(f[3]!));
    })
    .map((f) => `${f[4]} ${f[f.indexOf('-') + 1]} ${f[3]}`)
    .sort();
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGKILL'] as const;
const AT_ONCE = 4;

describeNs('kill matrix: nothing left, exit 128+n where the signal can be handled', () => {
  // The runs are independent (own sandboxes, ports, TMPDIR): AT_ONCE of them at a time, so a
  // loaded 2-core machine still starts each within its own deadlines.
  const outcomes = new Map<NodeJS.Signals, Outcome[]>(SIGNALS.map((s) => [s, []]));
  let tracefsBefore: string[] = [];
  beforeAll(async () => {
    expect(
      PORT_BASE + SUBJECTS.length * SIGNALS.length,
      `the matrix's ports must lie below the ephemeral range (${EPHEMERAL_LOW})`,
    ).toBeLessThanOrEqual(EPHEMERAL_LOW);
    tracefsBefore = twlabMounts(new Set());
    // Subject by subject: the slowest (lab) first and side by side, the quick ones fill in after.
    const queue = SUBJECTS.flatMap((subject) => SIGNALS.map((signal) => ({ subject, signal })));
    const worker = async (): Promise<void> => {
      for (let job = queue.shift(); job; job = queue.shift()) {
        outcomes.get(job.signal)!.push(await runOne(job.subject, job.signal));
      }
    };
    await Promise.all(Array.from({ length: AT_ONCE }, worker));
  }, 120_000);

  const noMountsLeft = (all: readonly Outcome[]): void => {
    const netns = new Set(all.flatMap((o) => [...o.netns]));
    expect(twlabMounts(netns)).toEqual(tracefsBefore);
  };

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    itNs(`${signal}: every command says so, prints its partial summary, exits 128+n`, async () => {
      for (const o of outcomes.get(signal)!) {
        const what = o.subject.name;
        expect([o.code, o.signal], `${what}: ${o.stderr}`).toEqual([128 + constants.signals[signal], null]);
        expect(o.stderr, what).not.toMatch(/\n\s+at /);
        if (o.subject.passesSignals) expect(o.stderr, what).not.toMatch(/interrupted/);
        else expect(o.stderr, what).toMatch(/^twlab: interrupted$/m);
        if (o.subject.partial) expect(o.stdout, what).toMatch(o.subject.partial);
        expect(leftInstances(o), `${what}: tracefs instances`).toEqual([]);
        await expectNothingLeft(o);
      }
      noMountsLeft(outcomes.get(signal)!);
    });
  }

  itNs('SIGKILL: nothing left; the next run removes the tracefs instances it could not', async () => {
    const killed = outcomes.get('SIGKILL')!;
    for (const o of killed) {
      expect([o.code, o.signal], o.subject.name).toEqual([null, 'SIGKILL']);
      await expectNothingLeft(o);
    }
    const traced = killed.filter((o) => o.instances.length > 0);
    if (haveTracefs) expect(traced.map((o) => o.subject.name).sort()).toEqual(['lab --html', 'top', 'trace']);
    const next = await runCli(['trace', '--duration', '0.1', '--port', '9']);
    expect(next.code, next.stderr).toBe(0);
    for (const o of traced) expect(leftInstances(o), o.subject.name).toEqual([]);
    noMountsLeft(killed);
  });
});
