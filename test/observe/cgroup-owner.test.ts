/**
 * ownerFromCgroup over /proc/PID/cgroup contents as each runtime leaves them: cgroup v1 (one line
 * per hierarchy), v2 (the single "0::" line) and hybrid hosts (both, where they disagree).
 */
import { describe, expect, it } from 'vitest';
import { ownerFromCgroup, type Owner } from '../../src/observe/cgroup-owner.js';
import { netnsMounts, ownerOfProcesses } from '../../src/observe/namespaces.js';

const ID = 'f3a1c0de9b8e7d6c5b4a39281706f5e4d3c2b1a0918273645546372819a0b1c2';
const ID2 = '0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef';
const UID = '7c5e8f2a-1b3d-4e6f-8a9b-0c1d2e3f4a5b';
const UID_ = UID.replace(/-/g, '_');

/** A cgroup v1 file: every controller at `path`, as runc's cgroupfs manager leaves a container. */
function v1(path: string, v2line = '/'): string {
  const ctrls = ['pids', 'hugetlb', 'net_cls,net_prio', 'perf_event', 'cpuset', 'memory', 'freezer'];
  const lines = ctrls.map((c, i) => `${12 - i}:${c}:${path}`);
  return (
    [...lines, `3:rdma:/`, `2:cpu,cpuacct:${path}`, `1:name=systemd:${path}`, `0::${v2line}`].join('\n') +
    '\n'
  );
}
const v2 = (path: string): string => `0::${path}\n`;

function container(runtime: Owner['runtime'], id: string, pod: Owner['pod'] = null): Owner {
  return { kind: 'container', runtime, id, name: null, pod };
}
const pod = (qos: 'guaranteed' | 'burstable' | 'besteffort', uid = UID): Owner['pod'] => ({
  uid,
  qos,
  name: null,
  namespace: null,
});

describe('ownerFromCgroup: Docker', () => {
  it('cgroupfs driver, v1 (the v2 line of a hybrid host left at containerd.service)', () => {
    expect(ownerFromCgroup(v1(`/docker/${ID}`, '/system.slice/containerd.service'))).toEqual(
      container('docker', ID),
    );
  });
  it('systemd driver, v1 and v2', () => {
    expect(ownerFromCgroup(v1(`/system.slice/docker-${ID}.scope`))).toEqual(container('docker', ID));
    expect(ownerFromCgroup(v2(`/system.slice/docker-${ID}.scope`))).toEqual(container('docker', ID));
  });
  it('cgroupfs driver on v2', () => {
    expect(ownerFromCgroup(v2(`/docker/${ID}`))).toEqual(container('docker', ID));
  });
  it('a cgroup removed while the process dies ("(deleted)")', () => {
    expect(ownerFromCgroup(`0::/system.slice/docker-${ID}.scope (deleted)\n`)).toEqual(
      container('docker', ID),
    );
  });
  it('Docker in Docker: the inner container', () => {
    expect(ownerFromCgroup(v2(`/system.slice/docker-${ID}.scope/docker/${ID2}`))).toEqual(
      container('docker', ID2),
    );
  });
  it('rootless Docker (systemd driver under the user manager)', () => {
    const path = `/user.slice/user-1000.slice/user@1000.service/user.slice/docker-${ID}.scope`;
    expect(ownerFromCgroup(v2(path))).toEqual(container('docker', ID));
  });
});

describe('ownerFromCgroup: Kubernetes', () => {
  it('containerd, systemd driver, v2, burstable', () => {
    const path = `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/cri-containerd-${ID}.scope`;
    expect(ownerFromCgroup(v2(path))).toEqual(container('containerd', ID, pod('burstable')));
  });
  it('containerd, systemd driver, guaranteed (no QoS level)', () => {
    const path = `/kubepods.slice/kubepods-pod${UID_}.slice/cri-containerd-${ID}.scope`;
    expect(ownerFromCgroup(v2(path))).toEqual(container('containerd', ID, pod('guaranteed')));
  });
  it('cgroupfs driver, v1: besteffort, burstable, guaranteed; the runtime is not in the path', () => {
    expect(ownerFromCgroup(v1(`/kubepods/besteffort/pod${UID}/${ID}`))).toEqual(
      container(null, ID, pod('besteffort')),
    );
    expect(ownerFromCgroup(v1(`/kubepods/burstable/pod${UID}/${ID}`))).toEqual(
      container(null, ID, pod('burstable')),
    );
    expect(ownerFromCgroup(v1(`/kubepods/pod${UID}/${ID}`))).toEqual(container(null, ID, pod('guaranteed')));
  });
  it('CRI-O, both drivers, and its conmon', () => {
    const sd = `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID_}.slice`;
    expect(ownerFromCgroup(v2(`${sd}/crio-${ID}.scope`))).toEqual(container('cri-o', ID, pod('besteffort')));
    expect(ownerFromCgroup(v2(`${sd}/crio-conmon-${ID}.scope`))).toEqual(
      container('cri-o', ID, pod('besteffort')),
    );
    expect(ownerFromCgroup(v1(`/kubepods/burstable/pod${UID}/crio-${ID}`))).toEqual(
      container('cri-o', ID, pod('burstable')),
    );
  });
  it('Docker (cri-dockerd) under kubepods, systemd driver, v1', () => {
    const path = `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/docker-${ID}.scope`;
    expect(ownerFromCgroup(v1(path))).toEqual(container('docker', ID, pod('burstable')));
  });
  it('kind (kubelet.slice), and a static pod (32-hex UID)', () => {
    const kind = `/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod${UID_}.slice/cri-containerd-${ID}.scope`;
    expect(ownerFromCgroup(v2(kind))).toEqual(container('containerd', ID, pod('besteffort')));
    const hash = '2d5a9c1b7e3f4a6b8c0d1e2f3a4b5c6d';
    const staticPod = `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${hash}.slice/cri-containerd-${ID}.scope`;
    expect(ownerFromCgroup(v2(staticPod))).toEqual(container('containerd', ID, pod('burstable', hash)));
  });
  it('the unconverted systemd form "<slice>:cri-containerd:<id>" below containerd.service', () => {
    const text = `1:name=systemd:/system.slice/containerd.service/kubepods-burstable-pod${UID_}.slice:cri-containerd:${ID}\n0::/\n`;
    expect(ownerFromCgroup(text)).toEqual(container('containerd', ID, pod('burstable')));
  });
  it('read from inside another cgroup namespace (twlab in a pod): paths climb out with ".."', () => {
    const path = `/../../kubepods-besteffort.slice/kubepods-besteffort-pod${UID_}.slice/cri-containerd-${ID}.scope`;
    expect(ownerFromCgroup(v2(path))).toEqual(container('containerd', ID, pod('besteffort')));
  });
  it('a process in the pod cgroup itself: the pod', () => {
    const path = `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID_}.slice`;
    expect(ownerFromCgroup(v2(path))).toEqual({
      kind: 'pod',
      runtime: null,
      id: UID,
      name: null,
      pod: pod('besteffort'),
    });
  });
  it('a pod-like name outside kubepods, or a malformed UID, is nothing', () => {
    expect(ownerFromCgroup(v2(`/mypods/pod${UID}/${ID}`))).toBeNull();
    expect(ownerFromCgroup(v2(`/kubepods/besteffort/podnot-a-uid/${ID}`))).toBeNull();
  });
});

describe('ownerFromCgroup: containerd, Podman, LXC', () => {
  it('nerdctl: cgroupfs /<namespace>/<id> and systemd nerdctl-<id>.scope; an id below containerd.service', () => {
    expect(ownerFromCgroup(v2(`/default/${ID}`))).toEqual(container('containerd', ID));
    expect(ownerFromCgroup(v1(`/k8s.io/${ID}`))).toEqual(container('containerd', ID));
    expect(ownerFromCgroup(v2(`/system.slice/nerdctl-${ID}.scope`))).toEqual(container('containerd', ID));
    expect(ownerFromCgroup(v2(`/system.slice/containerd.service/${ID}`))).toEqual(
      container('containerd', ID),
    );
  });
  it('Podman as root: libpod-<id>.scope, its "container" sub-cgroup, conmon; cgroupfs libpod_parent', () => {
    expect(ownerFromCgroup(v2(`/machine.slice/libpod-${ID}.scope`))).toEqual(container('podman', ID));
    expect(ownerFromCgroup(v2(`/machine.slice/libpod-${ID}.scope/container`))).toEqual(
      container('podman', ID),
    );
    expect(ownerFromCgroup(v2(`/machine.slice/libpod-conmon-${ID}.scope`))).toEqual(container('podman', ID));
    expect(ownerFromCgroup(v1(`/libpod_parent/libpod-${ID}`))).toEqual(container('podman', ID));
  });
  it('rootless Podman under user@UID.service', () => {
    const path = `/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-${ID}.scope/container`;
    expect(ownerFromCgroup(v2(path))).toEqual(container('podman', ID));
  });
  it('LXC / LXD: /lxc/<name>, lxc.payload.<name>, lxc.payload/<name>; not the monitor', () => {
    const lxc: Owner = { kind: 'lxc', runtime: 'lxc', id: 'web01', name: 'web01', pod: null };
    expect(ownerFromCgroup(v1('/lxc/web01'))).toEqual(lxc);
    expect(ownerFromCgroup(v2('/lxc.payload.web01'))).toEqual(lxc);
    expect(ownerFromCgroup(v2('/lxc.payload.web01/system.slice/nginx.service'))).toEqual(lxc);
    expect(ownerFromCgroup(v1('/lxc.payload/web01'))).toEqual(lxc);
    expect(ownerFromCgroup(v2('/lxc.monitor.web01'))).toBeNull();
  });
  it('a Docker container inside an LXC one: the inner container', () => {
    expect(ownerFromCgroup(v2(`/lxc.payload.web01/docker/${ID}`))).toEqual(container('docker', ID));
  });
});

describe('ownerFromCgroup: systemd services', () => {
  it('a system service, v2 and hybrid v1', () => {
    const svc: Owner = {
      kind: 'service',
      runtime: 'systemd',
      id: 'nginx.service',
      name: 'nginx.service',
      pod: null,
    };
    expect(ownerFromCgroup(v2('/system.slice/nginx.service'))).toEqual(svc);
    const hybrid =
      '9:pids:/system.slice/nginx.service\n4:memory:/system.slice\n1:name=systemd:/system.slice/nginx.service\n0::/system.slice/nginx.service\n';
    expect(ownerFromCgroup(hybrid)).toEqual(svc);
  });
  it('a user service; the user manager itself', () => {
    expect(
      ownerFromCgroup(v2('/user.slice/user-1000.slice/user@1000.service/app.slice/pipewire.service'))?.id,
    ).toBe('pipewire.service');
    expect(ownerFromCgroup(v2('/user.slice/user-1000.slice/user@1000.service/init.scope'))?.id).toBe(
      'user@1000.service',
    );
  });
  it('a container line beats a service line of the same file, whatever the order', () => {
    const text = `0::/system.slice/containerd.service\n1:name=systemd:/system.slice/containerd.service\n4:pids:/docker/${ID}\n`;
    expect(ownerFromCgroup(text)).toEqual(container('docker', ID));
  });
});

describe('ownerFromCgroup: nothing known is null', () => {
  it.each([
    ['a user session scope', v2('/user.slice/user-1000.slice/session-3.scope')],
    ['init.scope', v1('/init.scope', '/init.scope')],
    ['the root', v2('/')],
    [
      'this kind of host (a v1 memory cgroup of some supervisor)',
      `9:name=systemd:/\n8:pids:/\n4:memory:/process_api/0c2f307b5b88ffd058fac8993438bdb3\n0::/\n`,
    ],
    ['a short id', v2('/docker/abc123')],
    ['a 64-hex id under an unknown parent (custom --cgroup-parent)', v2(`/mygroup/${ID}`)],
    ['an id below a parent named like an Object property', v2(`/toString/${ID}`)],
    ['an uppercase id', v2(`/docker/${ID.toUpperCase()}`)],
    ['garbage', 'hello\nworld:\n::\n12:pids\n'],
    ['empty', ''],
  ])('%s', (_name, text) => {
    expect(ownerFromCgroup(text)).toBeNull();
  });
});

describe("ownerOfProcesses: a namespace's owner from its processes' (lowest pid first)", () => {
  const svc: Owner = { kind: 'service', runtime: 'systemd', id: 'a.service', name: 'a.service', pod: null };
  const svc2: Owner = { ...svc, id: 'b.service', name: 'b.service' };
  const inPod = (id: string, uid = UID): Owner => container('containerd', id, pod('burstable', uid));

  it('nothing known: null', () => {
    expect(ownerOfProcesses([])).toBeNull();
    expect(ownerOfProcesses([null, null])).toBeNull();
  });
  it('one container, with processes of no owner and a service that joined it: the container', () => {
    expect(ownerOfProcesses([null, svc, container('docker', ID), container('docker', ID)])).toEqual(
      container('docker', ID),
    );
  });
  it('containers of one pod: the pod, named as whichever of its containers says', () => {
    const named = { ...inPod(ID), pod: { ...pod('burstable')!, name: 'api', namespace: 'shop' } };
    expect(ownerOfProcesses([inPod(ID2), named])).toEqual({
      kind: 'pod',
      runtime: 'containerd',
      id: UID,
      name: 'api',
      pod: { uid: UID, qos: 'burstable', name: 'api', namespace: 'shop' },
    });
  });
  it("containers of different pods, or of none: the lowest pid's", () => {
    const other = '11111111-2222-3333-4444-555555555555';
    expect(ownerOfProcesses([inPod(ID2, other), inPod(ID)])).toEqual(inPod(ID2, other));
    expect(ownerOfProcesses([container('docker', ID2), container('podman', ID)])).toEqual(
      container('docker', ID2),
    );
  });
  it("services only: the lowest pid's", () => {
    expect(ownerOfProcesses([null, svc2, svc])).toEqual(svc2);
  });
});

describe('netnsMounts: namespace files bind-mounted, from mountinfo', () => {
  it('nsfs (and pre-3.19 proc) mounts of net namespaces, paths unescaped; others ignored', () => {
    const text = [
      '25 30 0:23 / /run rw,nosuid,nodev shared:5 - tmpfs tmpfs rw,mode=755',
      '610 25 0:4 net:[4026532301] /run/netns/blue rw shared:5 - nsfs nsfs rw',
      '611 25 0:4 net:[4026532302] /run/docker/netns/1a2b3c4d5e6f rw shared:5 - nsfs nsfs rw',
      '612 25 0:4 net:[4026532303] /run/netns/with\\040space rw - nsfs nsfs rw',
      '613 25 0:3 net:[4026532304] /var/run/netns/old rw - proc proc rw',
      '614 25 0:4 mnt:[4026532305] /run/mntns rw - nsfs nsfs rw',
      '615 25 0:24 net:[4026532306] /weird rw - tmpfs tmpfs rw',
      '',
    ].join('\n');
    expect(netnsMounts(text)).toEqual([
      { inode: 4026532301, path: '/run/netns/blue' },
      { inode: 4026532302, path: '/run/docker/netns/1a2b3c4d5e6f' },
      { inode: 4026532303, path: '/run/netns/with space' },
      { inode: 4026532304, path: '/var/run/netns/old' },
    ]);
  });
});
