/**
 * The programs the sandbox drives: unshare, setpriv and nsenter (util-linux) and ip (iproute2),
 * and the argv that starts an agent or enters a host with them. Looked up on PATH and in the
 * sbin folders an unprivileged user's PATH often lacks.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { RunError } from '../common/errors.js';
import { distPath } from '../common/paths.js';

export interface Tools {
  unshare: string;
  setpriv: string;
  nsenter: string;
  ip: string;
  /** nft (nftables), looked up only for a NAT sandbox. */
  nft?: string;
}

/** How a host's namespaces are made: as root, or inside an unprivileged user namespace. */
export type SandboxMode = 'root' | 'userns';

const PACKAGES: Record<Exclude<keyof Tools, 'nft'>, string> = {
  unshare: 'util-linux',
  setpriv: 'util-linux',
  nsenter: 'util-linux',
  ip: 'iproute2',
};

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function which(name: string): string | undefined {
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter), '/usr/sbin', '/sbin', '/usr/bin', '/bin'];
  return dirs
    .filter((d) => d !== '')
    .map((d) => join(d, name))
    .find(executable);
}

/** nft for the router's ruleset: TWLAB_NFT if set (an install elsewhere), else found as the others. */
function findNft(): string {
  const given = process.env['TWLAB_NFT'];
  const nft = given ?? which('nft');
  if (nft && executable(nft)) return nft;
  throw new RunError(
    `sandbox --nat: needs nft (Debian package nftables), ${given ? `TWLAB_NFT=${given} is not executable` : 'not found on PATH or in /usr/sbin, /sbin'}`,
  );
}

let cached: Tools | undefined;

/** Absolute paths of the tools (`nft` too if asked); a RunError naming the missing ones and their packages. */
export function findTools(opts: { nft?: boolean } = {}): Tools {
  const base = findBaseTools();
  return opts.nft ? { ...base, nft: findNft() } : base;
}

function findBaseTools(): Tools {
  if (cached) return cached;
  const found: Partial<Tools> = {};
  const missing: string[] = [];
  for (const name of Object.keys(PACKAGES) as Array<keyof typeof PACKAGES>) {
    const path = which(name);
    if (path) found[name] = path;
    else missing.push(`${name} (${PACKAGES[name]})`);
  }
  if (missing.length > 0) {
    throw new RunError(`sandbox: needs ${missing.join(', ')}, not found on PATH or in /usr/sbin, /sbin`);
  }
  cached = found as Tools;
  return cached;
}

/**
 * argv of a host's agent. The chain makes the host die with twlab: setpriv gives unshare a
 * parent-death SIGKILL; unshare --kill-child passes it on to the agent, pid 1 of a new pid
 * namespace, whose death makes the kernel kill every process in it; the network namespace goes
 * when its last process does. `joinUserNsOf` (userns mode, second host) puts the new namespaces in
 * the first host's user namespace, so a veth pair can join them.
 */
export function agentArgv(tools: Tools, mode: SandboxMode, joinUserNsOf?: number): string[] {
  const agent = [process.execPath, distPath('sandbox/agent.js')];
  const unshare = [tools.unshare, '--net', '--pid', '--fork', '--kill-child'];
  const deathSig = [tools.setpriv, '--pdeathsig', 'KILL', '--'];
  if (mode === 'root') return [...deathSig, ...unshare, '--', ...agent];
  if (joinUserNsOf === undefined) {
    return [...deathSig, tools.unshare, '--user', '--map-root-user', ...unshare.slice(1), '--', ...agent];
  }
  // nsenter does not fork here (no -p), so setpriv's parent is still twlab.
  return [
    tools.nsenter,
    '-t',
    String(joinUserNsOf),
    '-U',
    '--preserve-credentials',
    '--',
    ...deathSig,
    ...unshare,
    '--',
    ...agent,
  ];
}

/** nsenter options that enter a host's namespaces (user namespace too in userns mode). */
export function enterOptions(mode: SandboxMode, pid: number, namespaces: 'net' | 'net+pid'): string[] {
  const opts = ['-t', String(pid)];
  if (mode === 'userns') opts.push('-U', '--preserve-credentials');
  opts.push('-n');
  if (namespaces === 'net+pid') opts.push('-p');
  return opts;
}

/**
 * argv that runs a program inside a host: in its network and pid namespaces (so it dies with the
 * host), with a parent-death SIGKILL tied to nsenter (so killing the returned process kills it).
 */
export function enterArgv(tools: Tools, mode: SandboxMode, pid: number, argv: string[]): string[] {
  return [
    tools.nsenter,
    ...enterOptions(mode, pid, 'net+pid'),
    '--',
    tools.setpriv,
    '--pdeathsig',
    'KILL',
    '--',
    ...argv,
  ];
}
