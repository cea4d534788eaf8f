/**
 * A host that looks like a container host, for the host-wide tests (census -A, doctor -A, ui):
 * sandbox hosts, each with its own port range, tcp_tw_reuse and number of TIME-WAIT sockets (the
 * census fixture), whose processes sit in a cgroup named as Docker, containerd under Kubernetes and
 * Podman name theirs (made under the writable cgroup v2 hierarchy, removed afterwards).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readlinkSync, rmdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createSandbox, type Sandbox, type SandboxHost } from '../../src/sandbox/index.js';
import { netnsInodeOf } from '../../src/sockets/netns.js';

export const CENSUS_FIXTURE = fileURLToPath(new URL('../observe/census-fixture.py', import.meta.url));

/** Where a test may make cgroups: the v2 hierarchy (pure v2 at the root, or hybrid's "unified"). */
export const CGROUP2 = existsSync('/sys/fs/cgroup/cgroup.controllers')
  ? '/sys/fs/cgroup'
  : '/sys/fs/cgroup/unified';

export interface Container {
  name: 'docker' | 'kubepods' | 'podman';
  /** cgroup directories (outermost first) made for it, relative to CGROUP2. */
  dirs: string[];
  id: string;
  podUid?: string;
  range: { low: number; high: number };
  twReuse: number;
  /** TIME-WAIT sockets the fixture makes to 127.0.0.1:7000. */
  tw: number;
  box?: Sandbox;
  fixture?: ChildProcess;
  inode?: number;
}

const hex = (): string => randomBytes(32).toString('hex');

/**
 * Three containers, fresh ids each call. Docker's runs out first (150 TIME-WAIT of a 200-port
 * range); the pod's holds 40 of 5,000; Podman's 10 of the default range.
 */
export function containerSpecs(): Container[] {
  const docker = hex();
  const kube = hex();
  const podman = hex();
  const podUid = randomUUID();
  const pod = `kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${podUid.replace(/-/g, '_')}.slice`;
  return [
    {
      name: 'docker',
      dirs: ['system.slice', `system.slice/docker-${docker}.scope`],
      id: docker,
      range: { low: 30000, high: 30199 },
      twReuse: 0,
      tw: 150,
    },
    {
      name: 'kubepods',
      dirs: [
        'kubepods.slice',
        'kubepods.slice/kubepods-besteffort.slice',
        pod,
        `${pod}/cri-containerd-${kube}.scope`,
      ],
      id: kube,
      podUid,
      range: { low: 40000, high: 44999 },
      twReuse: 1,
      tw: 40,
    },
    {
      name: 'podman',
      dirs: ['machine.slice', `machine.slice/libpod-${podman}.scope`],
      id: podman,
      range: { low: 32768, high: 60999 },
      twReuse: 2,
      tw: 10,
    },
  ];
}

/** Every pid whose network namespace is `inode`. */
export function pidsIn(inode: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readlinkSync(`/proc/${d}/ns/net`) === `net:[${inode}]`) out.push(Number(d));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** `ss -tan` output as counts per state (ss's names). */
export function parseSs(text: string): Record<string, number> {
  const by: Record<string, number> = {};
  for (const l of text.trim().split('\n').slice(1)) {
    const s = l.trim().split(/\s+/)[0]!;
    by[s] = (by[s] ?? 0) + 1;
  }
  return by;
}

/** Counts per state as `ss -tan` sees them inside a host. */
export async function ssByState(h: SandboxHost): Promise<Record<string, number>> {
  return parseSs((await h.exec(['ss', '-tan'])).stdout);
}

/**
 * A reading of a container's namespace (twlab's) taken between two `ss` readings of it: TIME-WAIT
 * sockets only expire meanwhile (60 s after the fixture made them; a loaded machine can take that
 * long), so the count lies between the later and the earlier ss; every other state is equal.
 */
export function expectBetweenSs(
  byState: Record<string, number>,
  before: Record<string, number>,
  after: Record<string, number>,
  what: string,
): void {
  const { 'TIME-WAIT': tw = 0, ...rest } = byState;
  const { 'TIME-WAIT': twBefore = 0, ...restBefore } = before;
  const { 'TIME-WAIT': twAfter = 0 } = after;
  expect(rest, what).toEqual(restBefore);
  expect(tw, `${what}: TIME-WAIT, ss ${twBefore} then ${twAfter}`).toBeLessThanOrEqual(twBefore);
  expect(tw, `${what}: TIME-WAIT, ss ${twBefore} then ${twAfter}`).toBeGreaterThanOrEqual(twAfter);
}

async function startFixture(h: SandboxHost, tw: number): Promise<ChildProcess> {
  const child = h.spawn([
    'python3',
    CENSUS_FIXTURE,
    JSON.stringify({ port: 7000, tw, estab: 3, hold_s: 90 }),
  ]);
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`fixture exited ${code}: ${err}`)));
  });
  return child;
}

/** Start each container: its sandbox, its sockets, and every process of it moved into its cgroup. */
export async function startContainers(containers: Container[]): Promise<void> {
  await Promise.all(
    containers.map(async (c) => {
      c.box = await createSandbox({ hosts: 1, portRange: c.range, sysctls: { tcp_tw_reuse: c.twReuse } });
      c.inode = netnsInodeOf(`/proc/${c.box.client.pid}/ns/net`);
      c.fixture = await startFixture(c.box.client, c.tw);
      // As a runtime does: every process of the container in its cgroup.
      for (const d of c.dirs) mkdirSync(`${CGROUP2}/${d}`, { recursive: true });
      const leaf = `${CGROUP2}/${c.dirs[c.dirs.length - 1]}/cgroup.procs`;
      for (const pid of pidsIn(c.inode)) writeFileSync(leaf, String(pid));
    }),
  );
}

/** Stop them and remove their cgroup directories (empty once the processes are gone). */
export async function stopContainers(containers: Container[]): Promise<void> {
  for (const c of containers) {
    c.fixture?.stdin?.end();
    await c.box?.close();
  }
  for (const c of containers) await removeCgroupDirs(c.dirs);
}

/**
 * Remove a container's cgroup directories, innermost first. Its own (the leaf) answers EBUSY for
 * a moment while its last process is being reaped (seen: one libpod scope left per run), so that
 * is retried for at most 2 s; a parent is tried once, since another container may still use it.
 */
export async function removeCgroupDirs(dirs: readonly string[]): Promise<void> {
  const [leaf, ...parents] = [...dirs].reverse();
  for (let i = 0; leaf !== undefined && i < 100; i++) {
    try {
      rmdirSync(`${CGROUP2}/${leaf}`);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EBUSY') break;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  for (const d of parents) {
    try {
      rmdirSync(`${CGROUP2}/${d}`);
    } catch {
      // a parent another container (of this test or another) still uses
    }
  }
}
