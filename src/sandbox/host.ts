/**
 * One sandbox host as callers see it: exec/spawn through nsenter into the agent's namespaces,
 * call/readSysctl through the agent's channel.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { delimiter } from 'node:path';
import { UsageError } from '../common/errors.js';
import type { AgentProcess } from './agent-process.js';
import { normaliseSysctlName } from './sysctl-names.js';
import { enterArgv } from './tools.js';
import type { SandboxMode, Tools } from './tools.js';
import type { ExecOptions, ExecResult, HostRole, SandboxHost, SpawnOptions } from './types.js';

const DEFAULT_EXEC_TIMEOUT_MS = 60_000;
/** exec keeps at most this many characters of each of stdout and stderr. */
const EXEC_OUTPUT_CAP = 16 * 1024 * 1024;

/** What a host needs from the sandbox that owns it. */
export interface HostOwner {
  readonly tools: Tools;
  readonly mode: SandboxMode;
  /** Throws a RunError once the sandbox is closed. */
  assertOpen(): void;
  /** Programs to kill when the sandbox closes. */
  track(child: ChildProcess): void;
}

/**
 * The pid of the program nsenter forked (its only child), as twlab sees it; undefined until it
 * exists. Reads /proc/PID/task/PID/children, or scans /proc where the kernel lacks that file.
 */
function programPid(nsenterPid: number): number | undefined {
  try {
    const kids = readFileSync(`/proc/${nsenterPid}/task/${nsenterPid}/children`, 'utf8').trim();
    return kids ? Number(kids.split(/\s+/)[0]) : undefined;
  } catch {
    // CONFIG_PROC_CHILDREN off: fall through to the scan.
  }
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === nsenterPid) return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

/**
 * nsenter does not pass signals on to the program it forked, and the program dies of SIGKILL
 * when nsenter does. So that `child.kill('SIGTERM')` means what it says, send signals to the
 * program itself once it exists (nsenter then exits with the program's own status).
 */
function forwardKillToProgram(child: ChildProcess): void {
  const killNsenter = child.kill.bind(child);
  child.kill = (signal?: NodeJS.Signals | number): boolean => {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null)
      return killNsenter(signal);
    const inner = programPid(child.pid);
    if (inner === undefined) return killNsenter(signal);
    try {
      process.kill(inner, signal ?? 'SIGTERM');
      return true;
    } catch {
      return killNsenter(signal);
    }
  };
}

/**
 * Programs in a host run as its root (uid 0 in userns mode too), so they should find ip, ss and
 * friends even when twlab's own PATH (an unprivileged user's) lacks the sbin folders.
 */
function withSbinPath(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const dirs = (env['PATH'] ?? '/usr/bin:/bin').split(delimiter);
  for (const d of ['/usr/sbin', '/sbin']) if (!dirs.includes(d)) dirs.push(d);
  return { ...env, PATH: dirs.join(delimiter) };
}

/** SIGKILL a detached child's whole process group (nsenter, the program and its children). */
function killGroup(child: ChildProcess): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

export class Host implements SandboxHost {
  constructor(
    readonly role: HostRole,
    readonly address: string,
    private readonly agent: AgentProcess,
    private readonly box: HostOwner,
  ) {}

  get pid(): number {
    return this.agent.pid;
  }

  spawn(argv: string[], opts: SpawnOptions = {}): ChildProcess {
    if (argv.length === 0) throw new UsageError('sandbox spawn: empty argv');
    this.box.assertOpen();
    const full = enterArgv(this.box.tools, this.box.mode, this.agent.pid, argv);
    const child = spawn(full[0]!, full.slice(1), {
      env: withSbinPath({ ...process.env, ...opts.env }),
      stdio: opts.stdio ?? 'pipe',
      detached: opts.detached ?? false,
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
    });
    this.box.track(child);
    forwardKillToProgram(child);
    return child;
  }

  exec(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      let child: ChildProcess;
      try {
        // Its own process group (no terminal is involved), so a timeout kills the whole tree.
        child = this.spawn(argv, { ...(opts.env ? { env: opts.env } : {}), detached: true });
      } catch (err) {
        reject(err);
        return;
      }
      let stdout = '';
      let stderr = '';
      // Bounded memory: output past the cap is dropped and the cut is marked.
      const keep = (acc: string, d: string): string =>
        acc.length >= EXEC_OUTPUT_CAP
          ? acc
          : acc.length + d.length > EXEC_OUTPUT_CAP
            ? acc + d.slice(0, EXEC_OUTPUT_CAP - acc.length) + '\n[twlab: output cut]\n'
            : acc + d;
      child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout = keep(stdout, d)));
      child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr = keep(stderr, d)));
      const timeoutMs = opts.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS;
      let timedOut = false;
      let drainTimer: NodeJS.Timeout | undefined;
      const timer = setTimeout(() => {
        timedOut = true;
        killGroup(child);
      }, timeoutMs);
      const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
        clearTimeout(timer);
        clearTimeout(drainTimer);
        if (timedOut) stderr += `\ntwlab: sandbox exec: killed after ${timeoutMs} ms: ${argv.join(' ')}\n`;
        resolve({ code, signal, stdout, stderr });
      };
      child.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.on('exit', (code, signal) => {
        // A background process of the program may hold its output open: wait a moment only.
        drainTimer = setTimeout(() => {
          child.stdout!.destroy();
          child.stderr!.destroy();
          finish(code, signal);
        }, 500);
        child.on('close', () => finish(code, signal));
      });
      child.stdin!.on('error', () => undefined); // the program may exit without reading its input
      child.stdin!.end(opts.input ?? '');
    });
  }

  call<T = unknown>(
    module: string,
    fn: string,
    args: unknown[],
    onEvent?: (event: unknown) => void,
  ): Promise<T> {
    try {
      this.box.assertOpen();
    } catch (err) {
      return Promise.reject(err);
    }
    return this.agent.request<T>({ op: 'call', module, fn, args, events: onEvent !== undefined }, onEvent);
  }

  async readSysctl(key: string): Promise<string | undefined> {
    this.box.assertOpen();
    const value = await this.agent.request<string | null>({
      op: 'readSysctl',
      key: normaliseSysctlName(key),
    });
    return value ?? undefined;
  }

  /** Used by the sandbox for setup and setLink. */
  ip(lines: string[], waitUp?: string): Promise<void> {
    return this.agent.request<void>({ op: 'ip', lines, ...(waitUp ? { waitUp } : {}) });
  }
}
