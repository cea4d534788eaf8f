/**
 * createSandbox: one agent per host, each in its own network + pid namespace, set up with
 * loopback, (with 2 hosts) a veth pair on 198.51.100.0/24, and the requested sysctls.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { delimiter } from 'node:path';
import { distPath } from '../common/paths.js';
import { release } from 'node:os';
import { RunError, UsageError, messageOf } from '../common/errors.js';
import { AgentProcess } from './agent-process.js';
import { forgetOnExit, killOnExit } from './cleanup.js';
import type { SysctlResult, SysctlWrite } from './protocol.js';
import { normaliseSysctlName } from './sysctl-names.js';
import { agentArgv, enterArgv, enterOptions, findTools } from './tools.js';
import type { SandboxMode, Tools } from './tools.js';
import type {
  ExecOptions,
  ExecResult,
  HostRole,
  Sandbox,
  SandboxHost,
  SandboxSpec,
  SpawnOptions,
  SysctlOutcome,
} from './types.js';

/** The 2-host network: a /24 that is never routed to the host. */
export const SANDBOX_NET = { client: '198.51.100.1', server: '198.51.100.2', prefix: 24, ifname: 'eth0' };

const DEFAULT_EXEC_TIMEOUT_MS = 60_000;
/** exec keeps at most this many characters of each of stdout and stderr. */
const EXEC_OUTPUT_CAP = 16 * 1024 * 1024;

/** TWLAB_SANDBOX_TRACE=1: startup phases with their times, on stderr. */
const TRACE = process.env['TWLAB_SANDBOX_TRACE'] === '1';
function trace(t0: number, what: string): void {
  if (TRACE) process.stderr.write(`twlab sandbox: ${(performance.now() - t0).toFixed(0)} ms ${what}\n`);
}
const DEFAULT_STARTUP_TIMEOUT_MS = 15_000;

interface PlannedSysctls {
  common: SysctlWrite[];
  byRole: Record<HostRole, SysctlWrite[]>;
}

function sysctlValue(key: string, value: string | number): string {
  const text = String(value).trim();
  if (text === '' || /[\n\r]/.test(text)) {
    throw new UsageError(`sysctl ${key}: '${String(value)}' is not a single-line value`);
  }
  return text;
}

/** Validate the spec before anything is started; the order is the order outcomes are reported. */
function planSysctls(spec: SandboxSpec): PlannedSysctls {
  const toWrites = (rec: Record<string, string | number> | undefined): SysctlWrite[] =>
    Object.entries(rec ?? {}).map(([k, v]) => {
      const key = normaliseSysctlName(k);
      return { key, value: sysctlValue(key, v) };
    });
  const common: SysctlWrite[] = [];
  if (spec.portRange) {
    const { low, high } = spec.portRange;
    common.push({ key: 'net.ipv4.ip_local_port_range', value: `${low} ${high}` });
  }
  common.push(...toWrites(spec.sysctls));
  return {
    common,
    byRole: { client: toWrites(spec.hostSysctls?.client), server: toWrites(spec.hostSysctls?.server) },
  };
}

/** One outcome per distinct result; the same result in both hosts is one outcome naming both. */
function mergeOutcomes(perHost: Array<{ role: HostRole; results: SysctlResult[] }>): SysctlOutcome[] {
  const out: SysctlOutcome[] = [];
  const same = (a: SysctlOutcome, b: SysctlResult): boolean =>
    a.key === b.key &&
    a.requested === b.requested &&
    a.status === b.status &&
    a.value === b.value &&
    a.reason === b.reason;
  for (const { role, results } of perHost) {
    for (const r of results) {
      const existing = out.find((o) => same(o, r));
      if (existing) {
        if (!existing.hosts.includes(role)) existing.hosts.push(role);
      } else {
        out.push({ ...r, hosts: [role] });
      }
    }
  }
  return out;
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

class Host implements SandboxHost {
  constructor(
    readonly role: HostRole,
    readonly address: string,
    private readonly agent: AgentProcess,
    private readonly box: SandboxImpl,
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
    return this.agent.request<T>({ op: 'call', module, fn, args }, onEvent);
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

class SandboxImpl implements Sandbox {
  hosts: Host[] = [];
  sysctls: SysctlOutcome[] = [];
  readonly kernel = release();
  private agents: AgentProcess[] = [];
  private readonly children = new Set<ChildProcess>();
  private closing: Promise<void> | undefined;

  constructor(
    readonly mode: SandboxMode,
    readonly tools: Tools,
  ) {}

  get client(): Host {
    return this.hosts[0]!;
  }

  get server(): Host {
    return this.hosts[this.hosts.length - 1]!;
  }

  assertOpen(): void {
    if (this.closing) throw new RunError('sandbox: already closed');
  }

  track(child: ChildProcess): void {
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
  }

  async startAgents(count: 1 | 2, timeoutMs: number): Promise<void> {
    const first = new AgentProcess('client', agentArgv(this.tools, this.mode), this.tools);
    this.agents.push(first);
    killOnExit(this);
    if (count === 1 || this.mode === 'userns') {
      await first.started(timeoutMs);
    }
    if (count === 2) {
      // In userns mode the server joins the client's user namespace, so it needs its pid first.
      const joinOf = this.mode === 'userns' ? first.pid : undefined;
      const second = new AgentProcess('server', agentArgv(this.tools, this.mode, joinOf), this.tools);
      this.agents.push(second);
      await Promise.all([
        this.mode === 'root' ? first.started(timeoutMs) : undefined,
        second.started(timeoutMs),
      ]);
    }
    // Never run setup in twlab's own namespace.
    const own = readlinkSync('/proc/self/ns/net');
    const seen = new Set([own]);
    for (const a of this.agents) {
      if (seen.has(a.netns))
        throw new RunError(`sandbox host ${a.name}: did not get a network namespace of its own`);
      seen.add(a.netns);
    }
  }

  async setUp(spec: SandboxSpec, plan: PlannedSysctls, timeoutMs: number, onVeth: () => void): Promise<void> {
    const two = this.agents.length === 2;
    const roles: HostRole[] = two ? ['client', 'server'] : ['client'];
    this.hosts = this.agents.map(
      (a, i) => new Host(roles[i]!, two ? SANDBOX_NET[roles[i]!] : '127.0.0.1', a, this),
    );
    if (two) {
      await this.createVeth(timeoutMs);
      onVeth();
    }
    const own = readlinkSync('/proc/self/ns/net');
    const perHost = await Promise.all(
      this.hosts.map(async (h, i) => {
        const ip = ['link set lo up'];
        if (two) {
          ip.push(`addr add ${h.address}/${SANDBOX_NET.prefix} dev ${SANDBOX_NET.ifname}`);
          ip.push(`link set ${SANDBOX_NET.ifname} up`);
        }
        // With 1 host it is both client and server: both roles' sysctls apply.
        const extra = two ? plan.byRole[h.role] : [...plan.byRole.client, ...plan.byRole.server];
        const results = await this.agents[i]!.request<SysctlResult[]>({
          op: 'setup',
          hostNetns: own,
          ip,
          sysctls: [...plan.common, ...extra],
        });
        return { role: h.role, results };
      }),
    );
    if (two) await Promise.all(this.hosts.map((h) => h.ip([], SANDBOX_NET.ifname)));
    void spec;
    this.sysctls = mergeOutcomes(perHost);
  }

  /** The veth pair, made from inside the client host with its peer put straight into the server's. */
  private async createVeth(timeoutMs: number): Promise<void> {
    const [client, server] = this.agents as [AgentProcess, AgentProcess];
    const argv = [
      this.tools.nsenter,
      ...enterOptions(this.mode, client.pid, 'net'),
      '--',
      this.tools.ip,
      'link',
      'add',
      SANDBOX_NET.ifname,
      'type',
      'veth',
      'peer',
      'name',
      SANDBOX_NET.ifname,
      'netns',
      String(server.pid),
    ];
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const code = await new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', resolve);
    });
    clearTimeout(timer);
    if (code !== 0)
      throw new RunError(`sandbox: could not create the veth pair: ${stderr.trim() || `exit ${code}`}`);
  }

  async setLink(up: boolean): Promise<void> {
    this.assertOpen();
    if (this.hosts.length !== 2) throw new UsageError('sandbox setLink: needs a sandbox with 2 hosts');
    const line = `link set ${SANDBOX_NET.ifname} ${up ? 'up' : 'down'}`;
    await Promise.all(this.hosts.map((h) => h.ip([line])));
    // Both ends must be up before either can send: wait on both, after both were set.
    if (up) await Promise.all(this.hosts.map((h) => h.ip([], SANDBOX_NET.ifname)));
  }

  /** Synchronous kill for 'exit' and signal handlers. */
  killNow(): void {
    for (const c of this.children) c.kill('SIGKILL');
    for (const a of this.agents) a.kill();
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const c of this.children) c.kill('SIGKILL');
      await Promise.all(this.agents.map((a) => a.close()));
      forgetOnExit(this);
    })();
    return this.closing;
  }
}

/** Modes to try, in order: root first when we are root, then the unprivileged fallback. */
function modesToTry(spec: SandboxSpec): SandboxMode[] {
  if (spec.mode && spec.mode !== 'auto') return [spec.mode];
  return process.getuid?.() === 0 ? ['root', 'userns'] : ['userns'];
}

const NEEDS =
  'twlab needs root (CAP_SYS_ADMIN) or unprivileged user namespaces ' +
  '(sysctl user.max_user_namespaces > 0; on Ubuntu also kernel.apparmor_restrict_unprivileged_userns=0)';

/**
 * Start a sandbox. Bad spec values throw a UsageError before anything starts; a sandbox that
 * cannot be made throws one RunError naming what is needed.
 */
export async function createSandbox(spec: SandboxSpec = {}): Promise<Sandbox> {
  const hosts = spec.hosts ?? 1;
  if (hosts !== 1 && hosts !== 2) {
    throw new UsageError(`sandbox hosts: ${String(hosts)} is not accepted (accepted: 1, 2)`);
  }
  const plan = planSysctls(spec);
  const tools = findTools();
  if (!existsSync(distPath('sandbox/agent.js'))) {
    throw new RunError(
      `sandbox: ${distPath('sandbox/agent.js')} is missing; build twlab first (npm run build)`,
    );
  }
  const timeoutMs = spec.startupTimeoutMs ?? DEFAULT_STARTUP_TIMEOUT_MS;
  const failures: string[] = [];
  for (const mode of modesToTry(spec)) {
    const box = new SandboxImpl(mode, tools);
    const t0 = performance.now();
    try {
      await box.startAgents(hosts, timeoutMs);
      trace(t0, `${hosts} agent(s) ready (${mode})`);
    } catch (err) {
      await box.close();
      failures.push(`${mode === 'root' ? 'as root' : 'in a user namespace'}: ${messageOf(err)}`);
      continue;
    }
    try {
      await box.setUp(spec, plan, timeoutMs, () => trace(t0, 'veth pair made'));
      trace(t0, 'hosts set up');
    } catch (err) {
      await box.close();
      throw err instanceof RunError || err instanceof UsageError
        ? err
        : new RunError(`sandbox: setting up the hosts failed: ${messageOf(err)}`);
    }
    return box;
  }
  throw new RunError(`cannot create a network namespace (${failures.join('; ')}); ${NEEDS}`);
}

/** Run fn with a fresh sandbox, closed afterwards even if fn throws. */
export async function withSandbox<T>(
  spec: SandboxSpec,
  fn: (sandbox: Sandbox) => Promise<T> | T,
): Promise<T> {
  const box = await createSandbox(spec);
  try {
    return await fn(box);
  } finally {
    await box.close();
  }
}
