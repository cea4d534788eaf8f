/**
 * discoverNetns on this host, against the kernel: sandbox hosts made to look like containers by
 * moving their agents into real cgroup directories named as Docker (v1 cgroupfs driver and v2
 * systemd driver at once, as on a hybrid host), containerd under Kubernetes (a pod of two
 * containers) and Podman name theirs, plus a namespace kept only by a /run/netns bind mount.
 * Truth: readlink /proc/PID/ns/net, stat of the mount, a /proc scan and lsns.
 *
 * The cgroups and the mount are made here and removed in afterAll (processes moved back out
 * first; only directories this file made are removed). The runtime files that give names are
 * fixtures in a temporary folder passed as `roots`: the host's own are never written.
 */
import { execFileSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { distPath } from '../../src/common/paths.js';
import { discoverNetns, type NetnsDiscovery, type NetnsInfo } from '../../src/observe/namespaces.js';
import { createSandbox, type Sandbox } from '../../src/sandbox/index.js';
import { bindNetns, unbindNetns } from '../helpers/run-netns.js';
import { describeNs, ownNetns, processesInNetns, waitFor } from '../helpers/sandbox.js';

/** Where cgroup v2 is mounted (pure v2 host, or hybrid "unified"), and v1's pids hierarchy. */
const V2 = existsSync('/sys/fs/cgroup/cgroup.controllers')
  ? '/sys/fs/cgroup'
  : existsSync('/sys/fs/cgroup/unified/cgroup.procs')
    ? '/sys/fs/cgroup/unified'
    : undefined;
const V1_PIDS =
  V2 !== '/sys/fs/cgroup' && existsSync('/sys/fs/cgroup/pids/cgroup.procs')
    ? '/sys/fs/cgroup/pids'
    : undefined;

const hex64 = (): string => randomBytes(32).toString('hex');
const inodeOf = (link: string): number => Number(/\[(\d+)\]/.exec(link)![1]);
const netnsOfPid = (pid: number): number => inodeOf(readlinkSync(`/proc/${pid}/ns/net`));

/** This process's own cgroup in a hierarchy ("pids" for v1, "" for v2), where moved pids go back. */
function ownCgroup(controller: string): string {
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
    const [, ctrls, path] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
    if (ctrls !== undefined && ctrls.split(',').includes(controller)) return path!;
  }
  throw new Error(`no ${controller || 'v2'} line in /proc/self/cgroup`);
}

/** Cgroup directories this test made, and the processes it moved into them. */
class Cgroups {
  private readonly made: { root: string; dir: string }[] = [];

  /**
   * mkdir -p ROOT/REL (remembering each level it made) and move `pid` into it. Other test files
   * make and remove the same parents (system.slice...) meanwhile: one made first is theirs
   * (EEXIST), and one they removed between two levels is made again (ENOENT, 5 tries).
   */
  join(root: string, rel: string, pid: number): void {
    for (let attempt = 1; ; attempt++) {
      try {
        let dir = root;
        for (const part of rel.split('/')) {
          dir = join(dir, part);
          try {
            mkdirSync(dir);
            this.made.push({ root, dir });
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
          }
        }
        writeFileSync(join(dir, 'cgroup.procs'), `${pid}\n`);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 5) throw err;
      }
    }
  }

  /** Move every process still in them back to this process's cgroup, then rmdir, deepest first. */
  async remove(): Promise<void> {
    for (const { root, dir } of [...this.made].reverse()) {
      const home = join(root, ownCgroup(root === V2 ? '' : 'pids'), 'cgroup.procs');
      for (const pid of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
        try {
          writeFileSync(home, `${pid}\n`);
        } catch {
          // exited meanwhile
        }
      }
      // A process that just died may keep the cgroup busy for a moment.
      const removed = await waitFor(() => {
        try {
          rmdirSync(dir);
          return true;
        } catch (err) {
          return (err as NodeJS.ErrnoException).code === 'ENOENT';
        }
      }, 5000);
      if (!removed) console.warn(`namespaces test: could not remove ${dir}`);
    }
    this.made.length = 0;
  }
}

describeNs('discoverNetns: every network namespace, with its owner', () => {
  const cgroups = new Cgroups();
  const boxes: Sandbox[] = [];
  const ids = { docker: hex64(), pause: hex64(), app: hex64(), podman: hex64(), dockershim: hex64() };
  const podUid = randomUUID();
  const podUid2 = randomUUID();
  const fixtures = mkdtempSync(join(tmpdir(), 'twlab-ns-'));
  let mountPath = '';
  let sleeper: ChildProcess | undefined;
  const agents = { docker: 0, pod: 0, podman: 0, dockershim: 0 };
  let appPid = 0;
  let mountInode = 0;
  let found: NetnsDiscovery;
  let unnamed: NetnsDiscovery;
  let lsnsBefore: Map<number, number>;
  let lsnsAfter: Map<number, number>;

  /** lsns: inode -> process count, for every namespace with a process. */
  function lsns(): Map<number, number> {
    const out = execFileSync('lsns', ['-t', 'net', '-n', '-r', '-o', 'NS,NPROCS'], { encoding: 'utf8' });
    return new Map(
      out
        .trim()
        .split('\n')
        .map((l) => l.split(' ').map(Number) as [number, number]),
    );
  }

  function runtimeFixtures(): void {
    const docker = join(fixtures, 'docker', 'containers', ids.docker);
    mkdirSync(docker, { recursive: true });
    writeFileSync(
      join(docker, 'config.v2.json'),
      JSON.stringify({ ID: ids.docker, Name: '/web-1', Config: {} }),
    );
    // A Kubernetes container run by Docker (cri-dockerd): the kubelet's labels name it and its pod.
    const shim = join(fixtures, 'docker', 'containers', ids.dockershim);
    mkdirSync(shim, { recursive: true });
    const labels = {
      'io.kubernetes.container.name': 'worker',
      'io.kubernetes.pod.name': 'batch-x2k',
      'io.kubernetes.pod.namespace': 'jobs',
    };
    const shimName = `/k8s_worker_batch-x2k_jobs_${podUid2}_0`;
    writeFileSync(
      join(shim, 'config.v2.json'),
      JSON.stringify({ ID: ids.dockershim, Name: shimName, Config: { Labels: labels } }),
    );
    const cri = (id: string, annotations: Record<string, string>): void => {
      mkdirSync(join(fixtures, 'containerd', 'k8s.io', id), { recursive: true });
      writeFileSync(
        join(fixtures, 'containerd', 'k8s.io', id, 'config.json'),
        JSON.stringify({ annotations }),
      );
    };
    const sandbox = {
      'io.kubernetes.cri.sandbox-name': 'api-7d9f',
      'io.kubernetes.cri.sandbox-namespace': 'shop',
    };
    cri(ids.pause, { ...sandbox, 'io.kubernetes.cri.container-type': 'sandbox' });
    cri(ids.app, { ...sandbox, 'io.kubernetes.cri.container-name': 'api' });
    const storage = join(fixtures, 'containers', 'overlay-containers');
    mkdirSync(storage, { recursive: true });
    writeFileSync(join(storage, 'containers.json'), JSON.stringify([{ id: ids.podman, names: ['db'] }]));
  }

  async function cleanup(): Promise<void> {
    sleeper?.kill('SIGKILL');
    // Out of the cgroups before the hosts die, so no dying process keeps a directory busy.
    await cgroups.remove();
    await Promise.all(boxes.map((b) => b.close()));
    if (mountPath) unbindNetns(mountPath);
    rmSync(fixtures, { recursive: true, force: true });
  }

  beforeAll(async () => {
    if (!V2) throw new Error('no cgroup v2 mount found (/sys/fs/cgroup or /sys/fs/cgroup/unified)');
    try {
      runtimeFixtures();
      for (let i = 0; i < 5; i++) boxes.push(await createSandbox({ hosts: 1 }));
      const [docker, pod, podman, mountOnly, dockershim] = boxes as [
        Sandbox,
        Sandbox,
        Sandbox,
        Sandbox,
        Sandbox,
      ];
      agents.docker = docker.client.pid;
      agents.pod = pod.client.pid;
      agents.podman = podman.client.pid;
      agents.dockershim = dockershim.client.pid;

      // Docker: both drivers' names at once, as on a hybrid host (v1 cgroupfs, v2 systemd).
      if (V1_PIDS) cgroups.join(V1_PIDS, `docker/${ids.docker}`, agents.docker);
      cgroups.join(V2, `system.slice/docker-${ids.docker}.scope`, agents.docker);

      // A besteffort pod on containerd (systemd driver): the pause container holds the
      // namespace, an app container joins it.
      const podSlice = `kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${podUid.replace(/-/g, '_')}.slice`;
      cgroups.join(V2, `${podSlice}/cri-containerd-${ids.pause}.scope`, agents.pod);
      sleeper = pod.client.spawn(['sleep', '120']);
      const podNs = netnsOfPid(agents.pod);
      await waitFor(
        () => processesInNetns(new Set([`net:[${podNs}]`])).some((p) => p.cmdline === 'sleep 120'),
        10_000,
      );
      appPid = processesInNetns(new Set([`net:[${podNs}]`])).find((p) => p.cmdline === 'sleep 120')!.pid;
      cgroups.join(V2, `${podSlice}/cri-containerd-${ids.app}.scope`, appPid);

      cgroups.join(V2, `machine.slice/libpod-${ids.podman}.scope`, agents.podman);

      // A hybrid node with the kubelet's cgroupfs driver: the pod's path (without the runtime)
      // only in the v1 hierarchies; the v2 line says containerd.service.
      if (V1_PIDS)
        cgroups.join(V1_PIDS, `kubepods/burstable/pod${podUid2}/${ids.dockershim}`, agents.dockershim);
      cgroups.join(V2, 'system.slice/containerd.service', agents.dockershim);

      // A namespace that only a bind mount keeps: mounted, then its host closed.
      mountPath = bindNetns(mountOnly.client.pid);
      mountInode = statSync(mountPath).ino;
      await mountOnly.close();

      lsnsBefore = lsns();
      found = discoverNetns({
        roots: {
          docker: join(fixtures, 'docker'),
          containerd: join(fixtures, 'containerd'),
          containers: join(fixtures, 'containers'),
        },
      });
      lsnsAfter = lsns();
      unnamed = discoverNetns({ names: false });
    } catch (err) {
      await cleanup();
      throw err;
    }
  }, 120_000);

  afterAll(cleanup, 60_000);

  function entry(d: NetnsDiscovery, inode: number): NetnsInfo {
    const e = d.namespaces.find((n) => n.inode === inode);
    expect(e, `namespace ${inode} not discovered`).toBeDefined();
    return e!;
  }

  it('lists every namespace lsns saw before and after, with the same process count', () => {
    const inodes = new Set(found.namespaces.map((n) => n.inode));
    let stable = 0;
    for (const [inode, nprocs] of lsnsBefore) {
      if (!lsnsAfter.has(inode)) continue;
      stable++;
      expect(inodes.has(inode), `lsns namespace ${inode}`).toBe(true);
      // Only the sandboxes' counts are stable; other namespaces of this machine churn.
      if (Object.values(agents).some((pid) => netnsOfPid(pid) === inode)) {
        expect(entry(found, inode).processCount).toBe(nprocs);
      }
    }
    expect(stable).toBeGreaterThanOrEqual(4);
    expect(found.omitted).toBe(0);
    // One entry per inode.
    expect(inodes.size).toBe(found.namespaces.length);
  });

  it('gives each sandbox its inode, its lowest processes with comm, and paths that open it', () => {
    for (const pid of Object.values(agents)) {
      const inode = netnsOfPid(pid);
      const e = entry(found, inode);
      const truth = processesInNetns(new Set([`net:[${inode}]`])).sort((a, b) => a.pid - b.pid);
      expect(e.processCount).toBe(truth.length);
      expect(e.processes.map((p) => p.pid)).toEqual(truth.slice(0, 8).map((p) => p.pid));
      for (const p of e.processes) expect(p.comm).toBe(readFileSync(`/proc/${p.pid}/comm`, 'utf8').trim());
      expect(e.processes.map((p) => p.pid)).toContain(pid);
      expect(e.paths[0]).toBe(e.path);
      for (const path of e.paths) expect(statSync(path).ino).toBe(inode);
      expect(e.mounts).toEqual([]);
      expect(e.self).toBe(false);
    }
  });

  it('marks twlab own namespace as self', () => {
    const own = entry(found, inodeOf(ownNetns));
    expect(own.self).toBe(true);
    expect(found.namespaces.filter((n) => n.self)).toHaveLength(1);
  });

  it("marks the host's namespace (kthreadd's) as host, with no owner", () => {
    // This test runs in the initial pid namespace, where pid 2 is kthreadd.
    expect(readFileSync('/proc/2/comm', 'utf8').trim()).toBe('kthreadd');
    const hosts = found.namespaces.filter((n) => n.host);
    expect(hosts.map((n) => n.inode)).toEqual([netnsOfPid(2)]);
    expect(hosts[0]!.owner).toBeNull();
    expect(hosts[0]!.processes[0]!.pid).toBeLessThanOrEqual(2);
  });

  it('finds the namespace kept only by a /run/netns mount, with no process', () => {
    const e = entry(found, mountInode);
    expect(processesInNetns(new Set([`net:[${mountInode}]`]))).toEqual([]);
    expect(e).toMatchObject({
      processes: [],
      processCount: 0,
      mounts: [mountPath],
      path: mountPath,
      owner: null,
    });
    expect(statSync(e.path).ino).toBe(mountInode);
  });

  it('owns the Docker namespace by the container (v1 cgroupfs and v2 systemd paths agree), named from config.v2.json', () => {
    const e = entry(found, netnsOfPid(agents.docker));
    expect(e.owner).toEqual({
      kind: 'container',
      runtime: 'docker',
      id: ids.docker,
      name: 'web-1',
      pod: null,
    });
    // unshare, the agent's parent, shares the namespace but sits in no container's cgroup.
    expect(e.processes[0]!.pid).toBeLessThan(agents.docker);
    expect(entry(unnamed, e.inode).owner).toEqual({ ...e.owner, name: null });
  });

  it('owns the namespace of two containers of one pod by the pod, with its UID, QoS and name', () => {
    const e = entry(found, netnsOfPid(agents.pod));
    expect(e.processes.map((p) => p.pid)).toContain(appPid);
    expect(e.owner).toEqual({
      kind: 'pod',
      runtime: 'containerd',
      id: podUid,
      name: 'api-7d9f',
      pod: { uid: podUid, qos: 'besteffort', name: 'api-7d9f', namespace: 'shop' },
    });
    expect(entry(unnamed, e.inode).owner).toMatchObject({ kind: 'pod', id: podUid, name: null });
  });

  it('owns the Podman namespace by the container, named from containers.json', () => {
    const e = entry(found, netnsOfPid(agents.podman));
    expect(e.owner).toEqual({ kind: 'container', runtime: 'podman', id: ids.podman, name: 'db', pod: null });
  });

  it('owns a cgroupfs-driver pod container found only in v1 by its pod; Docker files give runtime and names', () => {
    const e = entry(found, netnsOfPid(agents.dockershim));
    if (!V1_PIDS) {
      // A pure v2 host has no v1 hierarchy to put it in: only containerd.service remains.
      expect(e.owner).toMatchObject({ kind: 'service', id: 'containerd.service' });
      return;
    }
    expect(e.owner).toEqual({
      kind: 'container',
      runtime: 'docker',
      id: ids.dockershim,
      name: 'worker',
      pod: { uid: podUid2, qos: 'burstable', name: 'batch-x2k', namespace: 'jobs' },
    });
    // Without the files, the path alone does not say which runtime.
    expect(entry(unnamed, e.inode).owner).toMatchObject({ kind: 'container', runtime: null, name: null });
  });

  it('stops at maxNamespaces and counts the rest', () => {
    const d = discoverNetns({ maxNamespaces: 2, names: false });
    expect(d.namespaces).toHaveLength(2);
    expect(d.omitted).toBeGreaterThanOrEqual(4);
  });

  it('survives processes that exit while it reads', async () => {
    const box = boxes[0]!;
    // Short processes, one after another, in a sandbox while discovery walks /proc.
    const churn = box.client.spawn([
      'sh',
      '-c',
      'i=0; while [ $i -lt 5000 ]; do /bin/true; i=$((i+1)); done',
    ]);
    const exited = new Promise((r) => churn.on('exit', r));
    let runs = 0;
    const deadline = Date.now() + 5000;
    while (churn.exitCode === null && runs < 40 && Date.now() < deadline) {
      expect(discoverNetns({ names: false }).namespaces.length).toBeGreaterThan(0);
      runs++;
      await new Promise((r) => setImmediate(r));
    }
    churn.kill('SIGKILL');
    await exited;
    expect(runs).toBeGreaterThan(3);
  });

  it('without root: its own namespace, and a count of the pids it may not look at', () => {
    const script = `import(${JSON.stringify(distPath('observe/namespaces.js'))}).then((m) => process.stdout.write(JSON.stringify(m.discoverNetns())))`;
    const out = execFileSync(
      'setpriv',
      ['--reuid', '65534', '--regid', '65534', '--clear-groups', process.execPath, '-e', script],
      { encoding: 'utf8' },
    );
    const d = JSON.parse(out) as NetnsDiscovery;
    expect(d.unreadablePids).toBeGreaterThan(0);
    expect(d.namespaces.find((n) => n.self)?.inode).toBe(inodeOf(ownNetns));
    // Mounts are in mountinfo, readable to anyone.
    expect(d.namespaces.find((n) => n.inode === mountInode)?.mounts).toEqual([mountPath]);
  });
});
