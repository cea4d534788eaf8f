/**
 * Discovery: every network namespace on the host and who it belongs to. Only reads: /proc/PID/ns/net
 * links (one namespace per inode), /proc/self/mountinfo (namespaces kept by a bind mount, such as
 * `ip netns add` and Docker's /run/docker/netns, with or without a process), /proc/PID/cgroup of a
 * namespace's lowest pids (cgroup-owner.ts), and, for names, the runtimes' own files on the host.
 * Nothing is entered: readers open `path` (or one of `paths`) with setns and should check the inode
 * they land in, since a pid can be reused. Call it from twlab's own namespace: `self` is read from
 * /proc/self/ns/net, the main thread's.
 *
 * Processes come and go while /proc is walked: a pid that vanishes (ENOENT, ESRCH) is skipped; one
 * whose links may not be read (EACCES, EPERM: another user's, without root) is counted.
 */
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { ownerFromCgroup, type Owner } from './cgroup-owner.js';

export type { Owner, PodRef } from './cgroup-owner.js';

/** One network namespace. */
export interface NetnsInfo {
  /** The namespace's inode (`net:[INODE]`), which names it host-wide while it lives. */
  inode: number;
  /** A path that opens it: its first bind mount, else /proc/PID/ns/net of its lowest pid. */
  path: string;
  /** Every such path known, `path` first: for when the first process exits meanwhile. */
  paths: string[];
  /** Bind mounts of it in twlab's mount namespace (/run/netns/NAME, /run/docker/netns/ID, ...). */
  mounts: string[];
  /** Its lowest pids with their comm, a few at most (`processes` option); [] for a mount alone. */
  processes: { pid: number; comm: string }[];
  /** How many processes are in it. */
  processCount: number;
  /** Who it belongs to (see ownerOfProcesses); null where nothing is known, and for the host's. */
  owner: Owner | null;
  /** twlab's own namespace. */
  self: boolean;
  /** The host's initial namespace (kthreadd's, when twlab sees the host's pids); its owner is null. */
  host: boolean;
}

export interface NetnsDiscovery {
  /** Ordered by lowest pid; namespaces with no process last, by inode. */
  namespaces: NetnsInfo[];
  /** Namespaces found past `maxNamespaces`, not listed. */
  omitted: number;
  /** Pids whose namespace could not be read (EACCES / EPERM: without root, other users' processes). */
  unreadablePids: number;
}

export interface DiscoverOptions {
  /** At most this many namespaces are listed (the rest are counted in `omitted`); default 4096. */
  maxNamespaces?: number;
  /** Processes listed per namespace, lowest pids first; default 8. */
  processes?: number;
  /** Processes per namespace whose cgroup is read for the owner, lowest pids first; default 16. */
  ownerScan?: number;
  /** Read the runtimes' files for names (default true). */
  names?: boolean;
  /** Where the runtimes keep their files (tests point these elsewhere); see RuntimeRoots. */
  roots?: Partial<RuntimeRoots>;
}

/** The runtimes' state directories on the host. */
export interface RuntimeRoots {
  /** Docker's data-root: containers/<id>/config.v2.json. */
  docker: string;
  /** containers/storage (Podman, CRI-O): overlay-containers/containers.json, <id>/userdata/config.json. */
  containers: string;
  /** containerd's v2 task state: <namespace>/<id>/config.json (the OCI spec with annotations). */
  containerd: string;
}

const DEFAULT_ROOTS: RuntimeRoots = {
  docker: '/var/lib/docker',
  containers: '/var/lib/containers/storage',
  containerd: '/run/containerd/io.containerd.runtime.v2.task',
};

/** The initial pid namespace's inode (PROC_PID_INIT_INO): twlab sees the host's pid 1. */
const PID_INIT_INODE = 0xeffffffc;
/** A runtime file larger than this is not read for a name. */
const MAX_RUNTIME_FILE = 16 * 1024 * 1024;

interface Found {
  inode: number;
  /** Lowest pids first (/proc lists them in order; sorted anyway). */
  pids: number[];
  count: number;
  mounts: string[];
}

/** Every network namespace on the host; see NetnsInfo. Synchronous: a pass of /proc reads. */
export function discoverNetns(opts: DiscoverOptions = {}): NetnsDiscovery {
  const maxNamespaces = opts.maxNamespaces ?? 4096;
  const listed = opts.processes ?? 8;
  const ownerScan = opts.ownerScan ?? 16;
  const keepPids = Math.max(listed, ownerScan);
  const found = new Map<number, Found>();
  const omitted = new Set<number>();
  let unreadablePids = 0;

  const add = (inode: number): Found | undefined => {
    let f = found.get(inode);
    if (f) return f;
    if (found.size >= maxNamespaces) {
      omitted.add(inode);
      return undefined;
    }
    f = { inode, pids: [], count: 0, mounts: [] };
    found.set(inode, f);
    return f;
  };

  for (const pid of listPids()) {
    const link = readProcLink(pid, 'net');
    if (link === 'denied') unreadablePids++;
    if (typeof link !== 'number') continue;
    const f = add(link);
    if (!f) continue;
    f.count++;
    if (f.pids.length < keepPids) f.pids.push(pid);
  }
  for (const { inode, path } of netnsMounts()) {
    const f = add(inode);
    if (f && !f.mounts.includes(path)) f.mounts.push(path);
  }

  const self = readProcLink('self', 'net');
  const host = hostNetns();
  const names = opts.names === false ? undefined : new NameReader({ ...DEFAULT_ROOTS, ...opts.roots });
  const namespaces: NetnsInfo[] = [];
  for (const f of found.values()) {
    const processes: NetnsInfo['processes'] = [];
    for (const pid of f.pids.slice(0, listed)) {
      const comm = readSmall(`/proc/${pid}/comm`);
      if (comm !== undefined) processes.push({ pid, comm: comm.trimEnd() });
    }
    const isHost = f.inode === host;
    const owners = isHost ? [] : f.pids.slice(0, ownerScan).map((pid) => cgroupOwner(pid, names));
    const paths = [...f.mounts, ...processes.map((p) => `/proc/${p.pid}/ns/net`)];
    // A namespace whose every process vanished meanwhile, with no mount, is gone: not listed.
    if (paths.length === 0) continue;
    namespaces.push({
      inode: f.inode,
      path: paths[0]!,
      paths,
      mounts: f.mounts,
      processes,
      processCount: f.count,
      owner: ownerOfProcesses(owners),
      self: f.inode === self,
      host: isHost,
    });
  }
  namespaces.sort(
    (a, b) => (a.processes[0]?.pid ?? Infinity) - (b.processes[0]?.pid ?? Infinity) || a.inode - b.inode,
  );
  return { namespaces, omitted: omitted.size, unreadablePids };
}

/**
 * A namespace's owner from its processes' owners (lowest pids first; null = none known). Container
 * kinds outrank services (a service's process found in a container's namespace joined it, as
 * `nsenter` does). One container: it. Several containers of one pod: the pod. Otherwise the owner
 * of the lowest pid that has one (the namespace's first holder).
 */
export function ownerOfProcesses(owners: readonly (Owner | null)[]): Owner | null {
  const known = owners.filter((o): o is Owner => o !== null);
  const containers = known.filter((o) => o.kind !== 'service');
  const pool = containers.length > 0 ? containers : known;
  const first = pool[0];
  if (!first) return null;
  if (pool.every((o) => o.kind === first.kind && o.id === first.id)) return first;
  const uid = first.pod?.uid;
  if (uid !== undefined && pool.every((o) => o.pod?.uid === uid)) {
    const runtime = pool.every((o) => o.runtime === first.runtime) ? first.runtime : null;
    // The pause container may have no files that name the pod; any of its containers will do.
    const ref = pool.find((o) => o.pod?.name)?.pod ?? first.pod!;
    return { kind: 'pod', runtime, id: uid, name: ref.name, pod: { ...ref } };
  }
  return first;
}

/**
 * The initial network namespace's inode, or undefined when twlab does not see the host's pids.
 * Kernel threads live in it (kthreadd is forked from init_task); pid 1's link may be unreadable
 * even to root (a supervisor that denies ptrace), kthreadd's is not.
 */
function hostNetns(): number | undefined {
  if (readProcLink('self', 'pid') !== PID_INIT_INODE) return undefined;
  if (readSmall('/proc/2/comm')?.trimEnd() !== 'kthreadd') return undefined;
  const inode = readProcLink(2, 'net');
  return typeof inode === 'number' ? inode : undefined;
}

/** Numeric entries of /proc, ascending. */
function listPids(): number[] {
  const pids: number[] = [];
  for (const e of readdirSync('/proc')) {
    const c = e.charCodeAt(0);
    if (c >= 0x30 && c <= 0x39) pids.push(Number(e));
  }
  return pids.sort((a, b) => a - b);
}

/** The inode of /proc/PID/ns/KIND; 'gone' for a vanished pid, 'denied' without the right to look. */
function readProcLink(pid: number | 'self', kind: 'net' | 'pid'): number | 'gone' | 'denied' {
  let link: string;
  try {
    link = readlinkSync(`/proc/${pid}/ns/${kind}`);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') return 'gone';
    if (code === 'EACCES' || code === 'EPERM') return 'denied';
    throw err;
  }
  return Number(link.slice(link.indexOf('[') + 1, -1)); // "net:[4026531992]"
}

/** A small /proc file, or undefined when the process vanished or may not be read. */
function readSmall(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH' || code === 'EACCES' || code === 'EPERM') return undefined;
    throw err;
  }
}

/** The owner of one process, with names where `names` finds them. */
function cgroupOwner(pid: number, names: NameReader | undefined): Owner | null {
  const text = readSmall(`/proc/${pid}/cgroup`);
  const owner = text === undefined ? null : ownerFromCgroup(text);
  return owner && names ? names.complete(owner) : owner;
}

/**
 * Network namespaces bind-mounted anywhere in twlab's mount namespace, from /proc/self/mountinfo:
 * "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS", where a
 * namespace file's ROOT is "net:[INODE]" (fstype nsfs; proc before Linux 3.19). A stale file
 * under /run/netns with nothing mounted on it is not in this table, so it is not mistaken for one.
 */
export function netnsMounts(mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')): {
  inode: number;
  path: string;
}[] {
  const out: { inode: number; path: string }[] = [];
  for (const line of mountinfo.split('\n')) {
    const f = line.split(' ');
    const m = /^net:\[(\d+)\]$/.exec(f[3] ?? '');
    if (!m) continue;
    const fstype = f[f.indexOf('-') + 1];
    if (fstype !== 'nsfs' && fstype !== 'proc') continue;
    out.push({ inode: Number(m[1]), path: unescapeMountPath(f[4]!) });
  }
  return out;
}

/** mountinfo writes space, tab, newline and backslash in paths as \040, \011, \012, \134. */
function unescapeMountPath(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/**
 * Names from the runtimes' own files on the host, read once per container id. A file that is
 * absent, too big or not the JSON expected gives no name: never a guess.
 */
class NameReader {
  private readonly cache = new Map<string, Partial<Names> | null>();
  private podmanNames: Map<string, string> | undefined;

  constructor(private readonly roots: RuntimeRoots) {}

  /** The owner with the names its runtime's files give (a copy; the owner itself is unchanged). */
  complete(owner: Owner): Owner {
    // Only containers have files; a pod's name comes with its containers' (ownerOfProcesses).
    if (owner.kind !== 'container') return owner;
    const n = this.lookup(owner);
    if (!n) return owner;
    const pod = owner.pod
      ? { ...owner.pod, name: n.podName ?? owner.pod.name, namespace: n.podNamespace ?? owner.pod.namespace }
      : null;
    return { ...owner, runtime: owner.runtime ?? n.runtime ?? null, name: n.name ?? owner.name, pod };
  }

  private lookup(owner: Owner): Partial<Names> | null {
    const key = `${owner.runtime}/${owner.id}`;
    if (!this.cache.has(key)) this.cache.set(key, this.read(owner.runtime, owner.id));
    return this.cache.get(key)!;
  }

  private read(runtime: Owner['runtime'], id: string): Partial<Names> | null {
    // A Kubernetes container on the cgroupfs driver has no runtime in its path: whichever
    // runtime has a file for this id (ids are 64 random hex digits) is the one that ran it.
    switch (runtime) {
      case 'docker':
        return this.docker(id);
      case 'containerd':
        return this.containerd(id);
      case 'cri-o':
        return this.crio(id);
      case 'podman':
        return this.podman(id);
      case null:
        return this.containerd(id) ?? this.crio(id) ?? this.docker(id);
      default:
        return null;
    }
  }

  /** Docker's config.v2.json: "Name" ("/web"), and the kubelet's labels under dockershim. */
  private docker(id: string): Partial<Names> | null {
    const doc = obj(readJson(`${this.roots.docker}/containers/${id}/config.v2.json`));
    if (!doc) return null;
    const labels = obj(obj(doc['Config'])?.['Labels']);
    const name = str(doc['Name'])?.replace(/^\//, '');
    return {
      runtime: 'docker',
      name: str(labels?.['io.kubernetes.container.name']) ?? name,
      podName: str(labels?.['io.kubernetes.pod.name']),
      podNamespace: str(labels?.['io.kubernetes.pod.namespace']),
    };
  }

  /** containerd's task bundle config.json (the OCI spec): CRI's and nerdctl's annotations. */
  private containerd(id: string): Partial<Names> | null {
    let namespaces: string[];
    try {
      namespaces = readdirSync(this.roots.containerd);
    } catch {
      return null;
    }
    for (const ns of namespaces) {
      const a = obj(obj(readJson(`${this.roots.containerd}/${ns}/${id}/config.json`))?.['annotations']);
      if (!a) continue;
      return {
        runtime: 'containerd',
        name: str(a['io.kubernetes.cri.container-name']) ?? str(a['nerdctl/name']),
        podName: str(a['io.kubernetes.cri.sandbox-name']),
        podNamespace: str(a['io.kubernetes.cri.sandbox-namespace']),
      };
    }
    return null;
  }

  /** CRI-O's userdata/config.json (the OCI spec) carries the kubelet's annotations. */
  private crio(id: string): Partial<Names> | null {
    const path = `${this.roots.containers}/overlay-containers/${id}/userdata/config.json`;
    const a = obj(obj(readJson(path))?.['annotations']);
    if (!a || a['io.container.manager'] === 'libpod') return null;
    return {
      runtime: 'cri-o',
      name: str(a['io.kubernetes.container.name']),
      podName: str(a['io.kubernetes.pod.name']),
      podNamespace: str(a['io.kubernetes.pod.namespace']),
    };
  }

  /** Podman: containers/storage's containers.json lists each container's names. */
  private podman(id: string): Partial<Names> | null {
    if (!this.podmanNames) {
      this.podmanNames = new Map();
      const list = readJson(`${this.roots.containers}/overlay-containers/containers.json`);
      if (Array.isArray(list)) {
        for (const c of list) {
          const names: unknown = obj(c)?.['names'];
          const name = Array.isArray(names) ? str(names[0]) : undefined;
          const cid = str(obj(c)?.['id']);
          if (cid && name) this.podmanNames.set(cid, name);
        }
      }
    }
    const name = this.podmanNames.get(id);
    return name ? { runtime: 'podman', name } : null;
  }
}

interface Names {
  runtime: Owner['runtime'];
  name: string;
  podName: string;
  podNamespace: string;
}

/** A JSON file's value, or undefined: absent, unreadable, too big, not JSON. */
function readJson(path: string): unknown {
  try {
    if (statSync(path).size > MAX_RUNTIME_FILE) return undefined;
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
}

function obj(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}
