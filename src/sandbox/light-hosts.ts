/**
 * Many bare network namespaces at once, for host-scale benchmarks and tests (a host of 200
 * containers): each is held by one `sleep` that is pid 1 of its own pid namespace, started the way
 * an agent is (setpriv --pdeathsig KILL, unshare --kill-child), so it dies with twlab whatever
 * happens. No agent (a Node agent costs ~45 MB and ~0.5 s a host): a shell inside brings lo up and
 * writes the requested net.* sysctls (only there: it runs after unshare), prints "ready" and
 * becomes the sleep. Programs run in a host through nsenter, as in a full sandbox. Root only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { RunError } from '../common/errors.js';
import { releaseOnExit } from '../common/exit.js';
import type { PortRange } from '../common/parse.js';
import { sysctlPath } from '../observe/sysctl.js';
import { normaliseSysctlName } from './sysctl-names.js';
import { enterArgv, findTools, type Tools } from './tools.js';

export interface LightHostsSpec {
  portRange?: PortRange;
  /** net.* sysctls (short names mean net.ipv4.*), written in every host. */
  sysctls?: Record<string, string | number>;
  /** How many hosts start at once (default 16). */
  parallel?: number;
  /** A RunError if a host is not ready within this long; default 15 s. */
  startupTimeoutMs?: number;
}

export interface LightHost {
  /** The holder's pid as twlab sees it; /proc/PID/ns/net opens the namespace. */
  readonly pid: number;
  /** argv that runs `argv` inside this host's network and pid namespaces. */
  enter(argv: string[]): string[];
}

export interface LightHosts {
  readonly hosts: readonly LightHost[];
  /** Kill every holder (idempotent); the namespaces go with them. */
  close(): Promise<void>;
}

/** Inside the new namespaces: lo up, each (path, value) pair written, then ready, then sleep. */
const HOLDER_SCRIPT =
  'ip link set lo up || exit 1; while [ $# -gt 1 ]; do printf %s "$2" > "$1" || exit 1; shift 2; done; ' +
  'echo ready; exec sleep 2147483647';

/** The sysctl writes as (path, value) pairs; names checked (net.* only) before anything starts. */
function writes(spec: LightHostsSpec): string[] {
  const out: string[] = [];
  if (spec.portRange)
    out.push(sysctlPath('net.ipv4.ip_local_port_range'), `${spec.portRange.low} ${spec.portRange.high}`);
  for (const [k, v] of Object.entries(spec.sysctls ?? {}))
    out.push(sysctlPath(normaliseSysctlName(k)), String(v));
  return out;
}

function startOne(
  tools: Tools,
  args: string[],
  timeoutMs: number,
  track: (c: ChildProcess) => void,
): Promise<ChildProcess> {
  const child = spawn(
    tools.setpriv,
    ['--pdeathsig', 'KILL', '--', tools.unshare, '--net', '--pid', '--fork', '--kill-child', '--'].concat([
      'sh',
      '-c',
      HOLDER_SCRIPT,
      'holder',
      ...args,
    ]),
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PATH: `${process.env['PATH'] ?? ''}:/usr/sbin:/sbin` },
    },
  );
  track(child);
  return new Promise((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new RunError(`light host: not ready within ${timeoutMs} ms`));
    }, timeoutMs);
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-2000)));
    child.stdout!.setEncoding('utf8').once('data', () => {
      clearTimeout(timer);
      resolve(child);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new RunError(`light host: its set-up exited ${code}: ${err.trim().split('\n').pop() ?? ''}`));
    });
  });
}

/** The sleep behind unshare: the holder whose /proc/PID/ns/net is the host's. */
function holderPid(unsharePid: number): number {
  const kids = readFileSync(`/proc/${unsharePid}/task/${unsharePid}/children`, 'utf8').trim();
  const pid = Number(kids.split(/\s+/)[0]);
  if (!pid) throw new RunError(`light host: unshare ${unsharePid} has no child`);
  return pid;
}

function kill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

export async function createLightHosts(count: number, spec: LightHostsSpec = {}): Promise<LightHosts> {
  if (process.getuid?.() !== 0)
    throw new RunError('light hosts need root (they are for benchmarks and tests)');
  const tools = findTools();
  const args = writes(spec);
  const children: ChildProcess[] = [];
  const hosts: LightHost[] = [];
  // On exit (synchronous): everything at once; the kernel frees the namespaces either way.
  const killNow = (): void => {
    for (const h of hosts) kill(h.pid);
    for (const c of children) c.kill('SIGKILL');
  };
  const forget = releaseOnExit(killNow);
  const running = (c: ChildProcess): boolean => c.exitCode === null && c.signalCode === null;
  // close(): the holders first, so that unshare reaps each and exits; once every child has
  // exited, no process of a host is left. unshare itself only where its holder never started.
  const close = async (): Promise<void> => {
    for (const h of hosts) kill(h.pid);
    for (const c of children.slice(hosts.length)) c.kill('SIGKILL');
    const exits = Promise.all(children.filter(running).map((c) => new Promise((r) => c.once('exit', r))));
    const late = setTimeout(killNow, 5000);
    await exits;
    clearTimeout(late);
    forget();
  };
  try {
    const parallel = spec.parallel ?? 16;
    for (let i = 0; i < count; i += parallel) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(parallel, count - i) }, () =>
          startOne(tools, args, spec.startupTimeoutMs ?? 15_000, (c) => children.push(c)),
        ),
      );
      for (const c of batch) {
        const pid = holderPid(c.pid!);
        hosts.push({ pid, enter: (argv) => enterArgv(tools, 'root', pid, argv) });
      }
    }
  } catch (err) {
    await close();
    throw err;
  }
  return { hosts, close };
}
