/**
 * createSandbox: one agent per host, each in its own network + pid namespace, set up with
 * loopback, the veth pairs and routes of topology.ts (with 3 hosts the router's NAT), and the
 * requested sysctls.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readlinkSync } from 'node:fs';
import { release } from 'node:os';
import { RunError, UsageError, messageOf } from '../common/errors.js';
import { releaseOnExit } from '../common/exit.js';
import { distPath } from '../common/paths.js';
import { AgentProcess } from './agent-process.js';
import { Host } from './host.js';
import type { HostOwner } from './host.js';
import type { SysctlResult } from './protocol.js';
import { mergeOutcomes, planSysctls } from './sysctl-plan.js';
import type { PlannedSysctls } from './sysctl-plan.js';
import { agentArgv, enterOptions, findTools } from './tools.js';
import type { SandboxMode, Tools } from './tools.js';
import { NAT_NET, SANDBOX_NET, layout, natRuleset, resolveTopology } from './topology.js';
import type { HostCount, VethPlan } from './topology.js';
import type { NatSpec, Sandbox, SandboxSpec, SysctlOutcome } from './types.js';

/** The router forwards between its two links. */
const IP_FORWARD = { key: 'net.ipv4.ip_forward', value: '1' };

const DEFAULT_STARTUP_TIMEOUT_MS = 15_000;

/** TWLAB_SANDBOX_TRACE=1: startup phases with their times, on stderr. */
const TRACE = process.env['TWLAB_SANDBOX_TRACE'] === '1';
function trace(t0: number, what: string): void {
  if (TRACE) process.stderr.write(`twlab sandbox: ${(performance.now() - t0).toFixed(0)} ms ${what}\n`);
}

class SandboxImpl implements Sandbox, HostOwner {
  hosts: Host[] = [];
  sysctls: SysctlOutcome[] = [];
  nat: (NatSpec & { address: string }) | undefined;
  readonly kernel = release();
  private agents: AgentProcess[] = [];
  private readonly children = new Set<ChildProcess>();
  private closing: Promise<void> | undefined;
  /** Unregisters killNow from the exit path once close() is done. */
  private forget: (() => void) | undefined;

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

  get router(): Host | undefined {
    return this.hosts.length === 3 ? this.hosts[1] : undefined;
  }

  assertOpen(): void {
    if (this.closing) throw new RunError('sandbox: already closed');
  }

  track(child: ChildProcess): void {
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
  }

  async startAgents(count: HostCount, timeoutMs: number): Promise<void> {
    const first = new AgentProcess('client', agentArgv(this.tools, this.mode), this.tools);
    this.agents.push(first);
    // SIGKILL of twlab is the kernel's job (see tools.ts); every other end runs killNow.
    this.forget ??= releaseOnExit(() => this.killNow());
    if (count === 1 || this.mode === 'userns') {
      await first.started(timeoutMs);
    }
    if (count > 1) {
      // In userns mode the others join the client's user namespace, so they need its pid first.
      const joinOf = this.mode === 'userns' ? first.pid : undefined;
      const others = (count === 3 ? ['router', 'server'] : ['server']).map(
        (name) => new AgentProcess(name, agentArgv(this.tools, this.mode, joinOf), this.tools),
      );
      this.agents.push(...others);
      await Promise.all([
        this.mode === 'root' ? first.started(timeoutMs) : undefined,
        ...others.map((a) => a.started(timeoutMs)),
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

  async setUp(
    plan: PlannedSysctls,
    nat: NatSpec | undefined,
    timeoutMs: number,
    onVeth: () => void,
  ): Promise<void> {
    const net = layout(this.agents.length as HostCount);
    this.hosts = net.hosts.map((h, i) => new Host(h.role, h.address, this.agents[i]!, this));
    for (const v of net.veths) await this.createVeth(v, timeoutMs);
    if (net.veths.length > 0) onVeth();
    const own = readlinkSync('/proc/self/ns/net');
    const one = this.hosts.length === 1;
    const perHost = await Promise.all(
      net.hosts.map(async (h, i) => {
        // With 1 host it is both client and server: both roles' sysctls apply.
        const extra = one ? [...plan.byRole.client, ...plan.byRole.server] : plan.byRole[h.role];
        const router = h.role === 'router' && nat;
        const results = await this.agents[i]!.request<SysctlResult[]>({
          op: 'setup',
          hostNetns: own,
          ip: h.ip,
          ...(router ? { nft: { path: this.tools.nft!, ruleset: natRuleset(nat) } } : {}),
          sysctls: [...(router ? [IP_FORWARD] : []), ...plan.common, ...extra],
        });
        return { role: h.role, results };
      }),
    );
    await Promise.all(net.hosts.flatMap((h, i) => h.links.map((l) => this.hosts[i]!.ip([], l))));
    this.sysctls = mergeOutcomes(perHost);
    if (nat) this.nat = { ...nat, fullyRandom: nat.fullyRandom ?? false, address: NAT_NET.natAddress };
  }

  /** One veth pair, made from inside one host with its peer put straight into the other. */
  private async createVeth(v: VethPlan, timeoutMs: number): Promise<void> {
    const argv = [
      this.tools.nsenter,
      ...enterOptions(this.mode, this.agents[v.from]!.pid, 'net'),
      '--',
      this.tools.ip,
      'link',
      'add',
      v.ifname,
      'type',
      'veth',
      'peer',
      'name',
      v.peer,
      'netns',
      String(this.agents[v.to]!.pid),
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
      this.forget?.();
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
  const { hosts, nat } = resolveTopology(spec);
  const plan = planSysctls(spec);
  const tools = findTools({ nft: nat !== undefined });
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
      await box.setUp(plan, nat, timeoutMs, () => trace(t0, 'veth pair(s) made'));
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
