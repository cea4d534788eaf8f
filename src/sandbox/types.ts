/**
 * The sandbox contract: throw-away network namespaces ("hosts") bound to twlab's own processes.
 * Every other layer runs experiments through these types; only src/sandbox creates namespaces
 * or writes sysctls.
 */
import type { ChildProcess, StdioOptions } from 'node:child_process';
import type { PortRange } from '../common/parse.js';

export interface SandboxSpec {
  /**
   * 1: one host, loopback only. 2: a client host and a server host joined by a veth pair.
   * 3: client - router - server, the router source-NATing the client (needs `nat`).
   */
  hosts?: 1 | 2 | 3;
  /** The router's source NAT (3 hosts; implies them). */
  nat?: NatSpec;
  /** Sets net.ipv4.ip_local_port_range in every host. */
  portRange?: PortRange;
  /**
   * Sysctls applied in every host, by full name ("net.ipv4.tcp_tw_reuse") or short name
   * ("tcp_tw_reuse", taken as net.ipv4.*). A key this kernel lacks is reported, not fatal.
   */
  sysctls?: Record<string, string | number>;
  /** Sysctls for one role only (2 or 3 hosts), applied after `sysctls`. */
  hostSysctls?: Partial<Record<HostRole, Record<string, string | number>>>;
  /**
   * 'auto' (default): as root when twlab runs as root, else (or if that fails) in an
   * unprivileged user namespace. 'root' / 'userns' force one way (tests use this).
   */
  mode?: 'auto' | 'root' | 'userns';
  /** A RunError if the hosts are not up within this long; default 15 s. */
  startupTimeoutMs?: number;
}

export interface SpawnOptions {
  /** Added to twlab's own environment. */
  env?: NodeJS.ProcessEnv;
  /** Default 'pipe'; 'inherit' hands the program twlab's terminal (twlab sandbox -- CMD). */
  stdio?: StdioOptions;
  cwd?: string;
  /** Own process group and session (as child_process.spawn); no terminal then. */
  detached?: boolean;
}

export type HostRole = 'client' | 'router' | 'server';

/** The router's source NAT: TCP and UDP from the client leave with 203.0.113.1 and a port of `ports`. */
export interface NatSpec {
  ports: PortRange;
  /** nftables' fully-random: a random NAT port for every connection. */
  fullyRandom?: boolean;
}

/** What happened to one requested sysctl. */
export interface SysctlOutcome {
  /** Full dotted name, e.g. net.ipv4.tcp_tw_reuse. */
  key: string;
  requested: string;
  /** The value read back after writing, when applied. */
  value?: string;
  status: 'applied' | 'not-present' | 'rejected';
  /** For rejected: the kernel's errno name (EINVAL for an out-of-range value). */
  reason?: string;
  /** Which hosts it was applied in. */
  hosts: HostRole[];
}

export interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** Killed (SIGKILL) after this long; default 60 s. */
  timeoutMs?: number;
  /** Written to the program's stdin, which is then closed. */
  input?: string;
  env?: NodeJS.ProcessEnv;
}

export interface SandboxHost {
  readonly role: HostRole;
  /**
   * The address other hosts reach this one at: 127.0.0.1 with 1 host, 198.51.100.x with 2; with 3,
   * client 198.51.100.1, router 203.0.113.1 (its NAT address), server 203.0.113.2.
   */
  readonly address: string;
  /** The pid (as the parent sees it) of the agent that holds this host's namespace. */
  readonly pid: number;
  /** Run a program inside this host to completion and collect its output. */
  exec(argv: string[], opts?: ExecOptions): Promise<ExecResult>;
  /** Start a long-running program inside this host; it dies with the sandbox at the latest. */
  spawn(argv: string[], opts?: SpawnOptions): ChildProcess;
  /**
   * Call an exported async function of a twlab module inside this host (in the agent process):
   * the transport under `remote()` (sandbox/remote.ts), which is what callers use. `module` is
   * relative to dist/. Arguments and the result travel as JSON. With `onEvent`, the function
   * receives an extra argument after `args`, `emit(event)`, whose events reach `onEvent` in order.
   */
  call<T = unknown>(
    module: string,
    fn: string,
    args: unknown[],
    onEvent?: (event: unknown) => void,
  ): Promise<T>;
  /** Read a sysctl in this host (full or short name); undefined if this kernel lacks it. */
  readSysctl(key: string): Promise<string | undefined>;
}

export interface Sandbox {
  readonly hosts: readonly SandboxHost[];
  /** The host that connects: hosts[0]. With 1 host, client === server. */
  readonly client: SandboxHost;
  /** The host that listens: the last of `hosts` (hosts[0] with 1 host). */
  readonly server: SandboxHost;
  /** 3 hosts: the router between them (hosts[1]), which source-NATs the client. */
  readonly router?: SandboxHost;
  /** 3 hosts: the router's NAT as set up. */
  readonly nat?: NatSpec & { address: string };
  /** Outcome of every requested sysctl, in request order. */
  readonly sysctls: readonly SysctlOutcome[];
  /** `uname -r` of the running kernel. */
  readonly kernel: string;
  /** 'root' or 'userns' (unprivileged user+net namespace fallback). */
  readonly mode: 'root' | 'userns';
  /** 2 hosts: take the veth link down or up (packets queued meanwhile are dropped). */
  setLink(up: boolean): Promise<void>;
  /** Kill every process of the sandbox; its namespaces vanish with them. Idempotent. */
  close(): Promise<void>;
}
