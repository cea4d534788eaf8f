/**
 * createSandbox: one agent per host, each in its own network + pid namespace, set up with
 * loopback, (with 2 hosts) a veth pair on 198.51.100.0/24, and the requested sysctls.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readlinkSync } from 'node:fs';
import { release } from 'node:os';
import { RunError, UsageError, messageOf } from '../common/errors.js';
import { distPath } from '../common/paths.js';
import { AgentProcess } from './agent-process.js';
import { forgetOnExit, killOnExit } from './cleanup.js';
import { Host } from './host.js';
import type { HostOwner } from './host.js';
import type { SysctlResult } from './protocol.js';
import { mergeOutcomes, planSysctls } from './sysctl-plan.js';
import type { PlannedSysctls } from './sysctl-plan.js';
import { agentArgv, enterOptions, findTools } from './tools.js';
import type { SandboxMode, Tools } from './tools.js';
import type { HostRole, Sandbox, SandboxSpec, SysctlOutcome } from './types.js';

/** The 2-host network: a /24 that is never routed to the host. */
export const SANDBOX_NET = { client: '198.51.100.1', server: '198.51.100.2', prefix: 24, ifname: 'eth0' };

const DEFAULT_STARTUP_TIMEOUT_MS = 15_000;

/** TWLAB_SANDBOX_TRACE=1: startup phases with their times, on stderr. */
const TRACE = process.env['TWLAB_SANDBOX_TRACE'] === '1';
function trace(t0: number, what: string): void {
  if (TRACE) process.stderr.write(`twlab sandbox: ${(performance.now() - t0).toFixed(0)} ms ${what}\n`);
}

class SandboxImpl implements Sandbox, HostOwner {
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

  async setUp(plan: PlannedSysctls, timeoutMs: number, onVeth: () => void): Promise<void> {
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
      await box.setUp(plan, timeoutMs, () => trace(t0, 'veth pair made'));
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
