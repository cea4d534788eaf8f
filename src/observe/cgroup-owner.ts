/**
 * Who a process belongs to, from the text of its /proc/PID/cgroup: the container runtimes, the
 * kubelet and systemd each name the cgroup they put a process in after a fixed pattern. Pure: no
 * file is read here (namespaces.ts reads the files and adds names from the runtimes' own files).
 *
 * Patterns recognised (id = 64 lowercase hex digits; either driver, cgroup v1 or v2):
 *   Docker      /docker/<id> (cgroupfs driver), .../docker-<id>.scope (systemd driver)
 *   Kubernetes  a pod cgroup below a "kubepods" one: /kubepods[/besteffort|/burstable]/pod<uid>/
 *               (cgroupfs) or kubepods[-besteffort|-burstable]-pod<uid_with_underscores>.slice
 *               (systemd); its containers cri-containerd-<id>.scope, crio-<id>[.scope],
 *               docker-<id>.scope, or a bare <id> (cgroupfs: the runtime is not in the path);
 *               also the unconverted systemd form "<pod slice>:cri-containerd:<id>"
 *   containerd  /default/<id> and /k8s.io/<id> (nerdctl, cgroupfs), nerdctl-<id>.scope, or an
 *               <id> below containerd.service
 *   CRI-O       crio-<id>[.scope], crio-conmon-<id>[.scope]
 *   Podman      libpod-<id>[.scope], libpod-conmon-<id>[.scope], rootless ones under user@UID.service
 *   LXC / LXD   /lxc/<name>, /lxc.payload.<name>, /lxc.payload/<name>
 *   systemd     <unit>.service (system and user services)
 * Anything else (a session scope, init.scope, "/", a custom --cgroup-parent) gives null: a path
 * that names nothing we know is not guessed at.
 */

/** What owns a process or a namespace; `kind`, `id`, `name` and `pod` are the stable JSON fields. */
export interface Owner {
  /**
   * 'container': one container (Docker, containerd, CRI-O, Podman); 'pod': several containers of
   * one Kubernetes pod, or a process in the pod's own cgroup; 'service': a systemd unit;
   * 'lxc': an LXC / LXD container.
   */
  kind: 'container' | 'pod' | 'service' | 'lxc';
  /** Who made the cgroup; null when the path does not say (a Kubernetes cgroupfs-driver container). */
  runtime: 'docker' | 'containerd' | 'cri-o' | 'podman' | 'lxc' | 'systemd' | null;
  /** The container id (64 hex), the pod's UID (kind 'pod'), the unit ("nginx.service") or LXC name. */
  id: string;
  /** A human name where the runtime's own files on the host give it (namespaces.ts); else null. */
  name: string | null;
  /** The Kubernetes pod this belongs to, or null when not under kubepods. */
  pod: PodRef | null;
}

export interface PodRef {
  /** The pod's UID with dashes (a static pod's is 32 hex digits, its config hash). */
  uid: string;
  /** From the QoS level in the path; a pod cgroup directly under kubepods is 'guaranteed'. */
  qos: 'guaranteed' | 'burstable' | 'besteffort';
  /** The pod's name and namespace where a runtime's files give them; else null. */
  name: string | null;
  namespace: string | null;
}

type Runtime = Owner['runtime'];

const ID = '[0-9a-f]{64}';
const UUID = '[0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12}|[0-9a-f]{32}';

/** A container's own cgroup named by its prefix ("docker-<id>.scope", "crio-<id>"). */
const PREFIXED = new RegExp(
  `^(docker|cri-containerd|crio-conmon|crio|libpod-conmon|libpod|nerdctl)-(${ID})(?:\\.scope)?$`,
);
const PREFIX_RUNTIME: Record<string, Runtime> = {
  docker: 'docker',
  'cri-containerd': 'containerd',
  nerdctl: 'containerd',
  crio: 'cri-o',
  'crio-conmon': 'cri-o',
  libpod: 'podman',
  'libpod-conmon': 'podman',
};
/** A bare id, named by its parent: /docker/<id>, nerdctl's /<namespace>/<id>. */
const BARE_ID = new RegExp(`^${ID}$`);
const PARENT_RUNTIME = new Map<string, Runtime>([
  ['docker', 'docker'],
  ['default', 'containerd'],
  ['k8s.io', 'containerd'],
  ['containerd.service', 'containerd'],
]);
/** The kubelet's pod cgroup: "pod<uid>" (cgroupfs) or "...kubepods[-qos]-pod<uid>.slice" (systemd). */
const POD_CGROUPFS = new RegExp(`^pod(${UUID})$`);
const POD_SYSTEMD = new RegExp(`kubepods(?:-(besteffort|burstable))?-pod(${UUID})\\.slice$`);
/** containerd's cgroupsPath when not converted to a path: "<slice>:<prefix>:<id>". */
const COLON_FORM = new RegExp(`^([^:]*):([a-z-]+):(${ID})$`);
const LXC_PAYLOAD = /^lxc\.payload\.(.+)$/;
const SERVICE = /^[^/]+\.service$/;

/** Container-ish owners outrank a pod, which outranks a service. */
const RANK: Record<Owner['kind'], number> = { container: 3, lxc: 3, pod: 2, service: 1 };

/**
 * The owner named by /proc/PID/cgroup text, or null. Each line (v1 "N:controllers:/path", v2
 * "0::/path") is read on its own and the most specific answer wins: a container over a pod over a
 * service; between equals the v2 line, then name=systemd, then the first. (On a hybrid host the
 * v2 line alone can mislead: Docker's cgroupfs driver leaves it at containerd.service.)
 */
export function ownerFromCgroup(text: string): Owner | null {
  let best: Owner | null = null;
  let bestScore = 0;
  for (const line of text.split('\n')) {
    // A v2 cgroup removed while the process was dying reads "<path> (deleted)".
    const m = /^(\d+):([^:]*):(\/.*?)(?: \(deleted\))?$/.exec(line.trim());
    if (!m) continue;
    const owner = ownerFromPath(m[3]!);
    if (!owner) continue;
    const preference = m[1] === '0' && m[2] === '' ? 2 : m[2] === 'name=systemd' ? 1 : 0;
    const score = RANK[owner.kind] * 4 + preference;
    if (score > bestScore) {
      best = owner;
      bestScore = score;
    }
  }
  return best;
}

/** The owner named by one cgroup path ("/kubepods/besteffort/pod.../<id>"), or null. */
export function ownerFromPath(path: string): Owner | null {
  const segs = path.split('/').flatMap(expandColonForm);
  const pod = podOf(segs);
  // Innermost first: a container nested in another (or in an LXC) is the one the process is in.
  for (let i = segs.length - 1; i >= 0; i--) {
    const s = segs[i]!;
    const parent = segs[i - 1] ?? '';
    const prefixed = PREFIXED.exec(s);
    if (prefixed) return container(PREFIX_RUNTIME[prefixed[1]!]!, prefixed[2]!, pod);
    if (BARE_ID.test(s)) {
      if (pod && i === pod.index + 1) return container(null, s, pod);
      const runtime = PARENT_RUNTIME.get(parent);
      if (runtime) return container(runtime, s, pod);
    }
    const lxc = LXC_PAYLOAD.exec(s)?.[1] ?? (parent === 'lxc' || parent === 'lxc.payload' ? s : undefined);
    if (lxc) return { kind: 'lxc', runtime: 'lxc', id: lxc, name: lxc, pod: null };
  }
  if (pod) return { kind: 'pod', runtime: null, id: pod.ref.uid, name: null, pod: pod.ref };
  const unit = segs.findLast((s) => SERVICE.test(s));
  return unit ? { kind: 'service', runtime: 'systemd', id: unit, name: unit, pod: null } : null;
}

function container(runtime: Runtime, id: string, pod: { ref: PodRef } | null): Owner {
  return { kind: 'container', runtime, id, name: null, pod: pod ? { ...pod.ref } : null };
}

/** "<slice>:cri-containerd:<id>" -> ["<slice>", "cri-containerd-<id>.scope"]; others unchanged. */
function expandColonForm(seg: string): string[] {
  const m = COLON_FORM.exec(seg);
  if (!m) return seg === '' ? [] : [seg];
  const inner = `${m[2]}-${m[3]}.scope`;
  return m[1] ? [m[1], inner] : [inner];
}

/** The pod cgroup among the segments (only below a "kubepods" one), with its position. */
function podOf(segs: readonly string[]): { ref: PodRef; index: number } | null {
  let underKubepods = false;
  for (let i = 0; i < segs.length; i++) {
    const s = segs[i]!;
    const systemd = POD_SYSTEMD.exec(s);
    if (systemd) {
      const qos = (systemd[1] as PodRef['qos'] | undefined) ?? 'guaranteed';
      return { ref: podRef(systemd[2]!, qos), index: i };
    }
    const cgroupfs = underKubepods ? POD_CGROUPFS.exec(s) : null;
    if (cgroupfs) {
      const parent = segs[i - 1];
      const qos = parent === 'besteffort' || parent === 'burstable' ? parent : 'guaranteed';
      return { ref: podRef(cgroupfs[1]!, qos), index: i };
    }
    if (s.includes('kubepods')) underKubepods = true;
  }
  return null;
}

function podRef(uid: string, qos: PodRef['qos']): PodRef {
  return { uid: uid.replace(/_/g, '-'), qos, name: null, namespace: null };
}
