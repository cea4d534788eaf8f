/**
 * One read inside one discovered network namespace, with the outcomes every host-wide command
 * (census, doctor, exporter) reports the same way: read; gone (its processes exited and no mount
 * keeps it, found when opening); denied (no CAP_SYS_ADMIN over it: the caller may fall back to
 * /proc/PID/net); failed (anything else, named).
 */
import { currentNetnsInode, netnsInodeOf, withNetns } from '../sockets/netns.js';
import { SyscallError } from '../sockets/errno.js';
import { RunError, UsageError, messageOf } from '../common/errors.js';
import { show } from '../common/parse.js';
import type { NetnsDiscovery, NetnsInfo } from './namespaces.js';

/** A namespace that could not be read, and why. */
export interface SkippedNetns {
  inode: number;
  owner: NetnsInfo['owner'];
  /** 'gone': it disappeared while being read; 'denied': no permission to enter it. */
  reason: 'gone' | 'denied' | 'failed';
  message: string;
}

export type NetnsRead<T> = { ok: true; value: T } | { ok: false; skipped: SkippedNetns };

/**
 * Run `read` inside `ns` (synchronously: see withNetns), trying each path that opens it in turn,
 * since the process behind one may exit meanwhile. twlab's own namespace is read in place.
 */
export function readNetns<T>(ns: NetnsInfo, read: () => T): NetnsRead<T> {
  const skip = (reason: SkippedNetns['reason'], message: string): NetnsRead<T> => ({
    ok: false,
    skipped: { inode: ns.inode, owner: ns.owner, reason, message },
  });
  if (ns.self) return { ok: true, value: read() };
  for (const path of new Set([ns.path, ...ns.paths])) {
    try {
      // A pid can be reused: the path must still lead to the namespace discovery saw.
      const value = withNetns(path, () => (currentNetnsInode() === ns.inode ? { read: read() } : undefined));
      if (value) return { ok: true, value: value.read };
      continue;
    } catch (err) {
      const code = err instanceof SyscallError ? err.code : (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ESRCH') continue;
      if (code === 'EPERM' || code === 'EACCES') return skip('denied', `setns: ${code}`);
      return skip('failed', messageOf(err));
    }
  }
  return skip('gone', 'the namespace disappeared while being read');
}

/**
 * What discovery could not see, as notes for stderr. Unreadable pids are worth a note only
 * without root, where running as root is the fix; as root the odd one is expected (pid 1's link
 * answers EACCES on some hosts, and its namespace is found through kthreadd anyway).
 */
export function discoveryNotes(d: NetnsDiscovery, root = process.getuid?.() === 0): string[] {
  const notes: string[] = [];
  if (d.unreadablePids > 0 && !root)
    notes.push(
      `${d.unreadablePids} processes' namespaces could not be read (no permission: run as root to see every namespace)`,
    );
  if (d.omitted > 0) notes.push(`${d.omitted} more namespaces were found and not listed (limit reached)`);
  return notes;
}

/**
 * `--netns PID|PATH` as a namespace: the one discovery listed with that inode (owner, processes),
 * or, for a path discovery did not list (a mount elsewhere), a bare description of it.
 */
export function resolveNetns(spec: string, known: readonly NetnsInfo[]): NetnsInfo {
  const path = /^\d+$/.test(spec) ? `/proc/${spec}/ns/net` : spec;
  let inode: number;
  try {
    inode = netnsInodeOf(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH' || code === 'ENOTDIR')
      throw new UsageError(`--netns ${show(spec)}: no such process or file (${path})`);
    throw new RunError(`--netns ${show(spec)}: cannot open ${path}: ${code ?? messageOf(err)}`);
  }
  const ns = known.find((n) => n.inode === inode);
  return ns ? { ...ns, path } : bareNetns(inode, path);
}

/** A namespace known only by its inode and a path that opens it (readNetns checks the inode). */
export function bareNetns(inode: number, path: string): NetnsInfo {
  return {
    inode,
    path,
    paths: [],
    mounts: [],
    processes: [],
    processCount: 0,
    owner: null,
    self: false,
    host: false,
  };
}

/** The value of a `--netns` read, or its skip as the one-line error the command exits with. */
export function orFail<T extends object>(spec: string, r: T | SkippedNetns): T {
  if (!('reason' in r && 'message' in r && 'inode' in r)) return r;
  if (/EINVAL/.test(r.message)) throw new UsageError(`--netns ${show(spec)}: not a network namespace`);
  throw new RunError(`network namespace ${r.inode} (--netns ${spec}): ${r.reason}: ${r.message}`);
}
