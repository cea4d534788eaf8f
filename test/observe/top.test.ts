/**
 * `twlab top` and `twlab trace` against the kernel: who a connection belongs to. A Python server
 * and a Python client (not twlab) are separate processes in a sandbox; the client connects 150
 * times through a 100-port range with tcp_tw_reuse=0, closing first each time and carrying on
 * after errors, so the kernel gives it 100 connections (each a TIME-WAIT) and 50 EADDRNOTAVAIL.
 * Every count is held to the client's own and to `ss` in that namespace; none of the server's
 * may land on the client's pid or the reverse. On loopback the kernel runs the server's side of
 * each handshake in the client's task, so a tracer that took the task on the CPU would fail here.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { expect } from 'vitest';
import { twlabArgv } from '../../src/common/paths.js';
import { createSandbox, type Sandbox, type SandboxHost } from '../../src/sandbox/index.js';
import { netnsInodeOf } from '../../src/sockets/netns.js';
import type { TopDocument, TopProcess } from '../../src/observe/top-view.js';
import type { ConnectionTimeline, Transition } from '../../src/observe/trace.js';
import { CGROUP2, containerSpecs, pidsIn, removeCgroupDirs } from '../helpers/containers.js';
import { describeNs, itNs } from '../helpers/sandbox.js';

/** A port of this test process's own: tracefs is global, concurrent runs must not see each other. */
const PORT = 20000 + ((process.pid + 7) % 20000);

/** Accepts one connection at a time, reads to EOF (the client closes first), closes. */
const SERVER = `
import socket, sys, select, os
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(('127.0.0.1', ${PORT})); l.listen(512)
print(os.readlink('/proc/self'), flush=True)  # the pid as tracefs sees it (the host's procfs)
while True:
    r, _, _ = select.select([l, sys.stdin], [], [], 60)
    if sys.stdin in r or not r: break
    a, _ = l.accept(); a.settimeout(10)
    try:
        while a.recv(100): pass
    except OSError: pass
    a.close()
`;

/** N connect() attempts, closing first, carrying on after errors; prints its pid and its own counts. */
const CLIENT = `
import socket, sys, json, errno, os
ok = 0; fail = {}
for i in range(int(sys.argv[1])):
    s = socket.socket()
    try:
        s.connect(('127.0.0.1', ${PORT})); ok += 1
    except OSError as e:
        name = errno.errorcode.get(e.errno, str(e.errno)); fail[name] = fail.get(name, 0) + 1
    s.close()
print(json.dumps({'pid': int(os.readlink('/proc/self')), 'ok': ok, 'fail': fail}), flush=True)
sys.stdin.read()  # stay until the test ends: its /proc entries name its namespace
`;

interface Proc {
  child: ChildProcess;
  /** The first line it printed. */
  line: Promise<string>;
  out: () => string;
}

function watch(child: ChildProcess): Proc {
  let out = '';
  let err = '';
  const line = new Promise<string>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('\n')) resolve(out.split('\n')[0]!);
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('close', (code) => reject(new Error(`exited ${code}: ${err}`)));
  });
  line.catch(() => undefined);
  return { child, line, out: () => out };
}

/**
 * A twlab command; `ready` once its tracefs instance is, `done` when it exits. Tests end it with
 * SIGINT (`interrupt`) once their traffic is over, however slow the machine: it drains its buffer,
 * prints its document and exits 130.
 */
function startTwlab(
  host: SandboxHost | undefined,
  args: string[],
): {
  ready: Promise<void>;
  done: Promise<{ code: number | null; stdout: string; stderr: string }>;
  interrupt: () => void;
} {
  const argv = twlabArgv(...args);
  const child = host
    ? host.spawn(argv)
    : spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let onReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
    if (/tracefs instance \S+\n/.test(stderr)) onReady();
  });
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code) => resolve({ code, stdout, stderr })),
  );
  void done.then(onReady);
  return { ready, done, interrupt: () => child.kill('SIGINT') };
}

interface Run {
  server: number;
  client: { pid: number; ok: number; fail: Record<string, number> };
  procs: Proc[];
}

/** Server and client in a host; resolves when the client has made its attempts. */
async function churn(h: SandboxHost, attempts: number, before?: () => void): Promise<Run> {
  const server = watch(h.spawn(['python3', '-c', SERVER]));
  const serverPid = Number(await server.line);
  const client = watch(h.spawn(['python3', '-c', CLIENT, String(attempts)]));
  before?.();
  return {
    server: serverPid,
    client: JSON.parse(await client.line) as Run['client'],
    procs: [server, client],
  };
}

function stop(run: Run): void {
  for (const p of run.procs) p.child.stdin?.end();
}

function row(doc: TopDocument, pid: number): TopProcess {
  const found = doc.processes.filter((p) => p.pid === pid);
  expect(found, `one row for pid ${pid}`).toHaveLength(1);
  return found[0]!;
}

/**
 * The acceptance counts, each side's own and nothing of one on the other, held to what the
 * client counted itself and to `ss` in its namespace (`timeWait`): 100 connections and 50
 * EADDRNOTAVAIL, except that this kernel now and then lets one connection more through and
 * ends one TIME-WAIT early (seen: 101 and 49, ss 100), so the client's own figures are the truth.
 */
function expectAttributed(doc: TopDocument, run: Run, timeWait: number): void {
  const { ok, fail } = run.client;
  const refused = fail['EADDRNOTAVAIL'] ?? 0;
  expect(ok + refused, JSON.stringify(fail)).toBe(150); // every failure was EADDRNOTAVAIL
  expect(refused).toBeGreaterThanOrEqual(45); // the range ran out
  expect(timeWait).toBe(100); // every port of it in TIME-WAIT
  const c = row(doc, run.client.pid);
  expect(c).toMatchObject({
    comm: 'python3',
    connects: 150,
    failedConnects: { EADDRNOTAVAIL: refused },
    activeCloses: ok,
    passiveCloses: 0,
    accepts: 0,
    timeWaitAlive: timeWait,
  });
  expect(c.timeWaitCreated).toBeGreaterThanOrEqual(timeWait);
  expect(c.timeWaitCreated).toBeLessThanOrEqual(ok);
  expect(c.destinations[0]).toMatchObject({
    remote: `127.0.0.1:${PORT}`,
    connects: 150,
    failedConnects: refused,
    portsHeld: 100,
    rangeSize: 100,
    secondsToExhaustion: 0,
  });
  const s = row(doc, run.server);
  expect(s).toMatchObject({
    connects: 0,
    failedConnects: {},
    activeCloses: 0,
    passiveCloses: ok,
    accepts: ok,
    timeWaitCreated: 0,
  });
  // Nothing else: no unknown owner, no third process.
  expect(doc.processes.map((p) => p.pid).sort()).toEqual([run.client.pid, run.server].sort());
  expect(doc.lost).toEqual({ events: 0, reason: null });
}

/** TIME-WAIT sockets in a host, as ss counts them. */
async function timeWaits(h: SandboxHost): Promise<number> {
  const out = (await h.exec(['ss', '-tanH', 'state', 'time-wait'])).stdout.trim();
  return out ? out.split('\n').length : 0;
}

describeNs('twlab top: churn counted for the process that owns each socket', () => {
  itNs(
    'one namespace: the client has its connects, failures, active closes and TIME-WAIT; the server its accepts and passive closes',
    async () => {
      const box = await createSandbox({
        hosts: 1,
        portRange: { low: 30000, high: 30099 },
        sysctls: { tcp_tw_reuse: 0 },
      });
      try {
        const top = startTwlab(box.client, ['top', '--json', '--port', String(PORT), '--duration', '120']);
        await top.ready;
        const run = await churn(box.client, 150);
        const tw = await timeWaits(box.client);
        top.interrupt();
        const r = await top.done;
        stop(run);
        expect(r.code, r.stderr).toBe(130);
        const doc = JSON.parse(r.stdout) as TopDocument;
        expectAttributed(doc, run, tw);
        const inode = netnsInodeOf(`/proc/${box.client.pid}/ns/net`);
        expect(doc.processes.every((p) => p.netns === inode)).toBe(true);
      } finally {
        await box.close();
      }
    },
    90_000,
    // Once in six CI runs ss showed 96 TIME-WAIT sockets of the 100 ports, where every other run
    // shows 100: this kernel now and then ends a TIME-WAIT early (see census.test.ts). One retry.
    { retry: 1 },
  );

  itNs(
    'two container namespaces, the same 4-tuples in each: -A shows each client and server under its own owner with its own counts',
    async () => {
      const specs = containerSpecs().filter((c) => c.name !== 'kubepods');
      const boxes: Sandbox[] = [];
      try {
        for (const c of specs) {
          boxes.push(
            await createSandbox({
              hosts: 1,
              portRange: { low: 30000, high: 30099 },
              sysctls: { tcp_tw_reuse: 0 },
            }),
          );
          for (const d of c.dirs) mkdirSync(`${CGROUP2}/${d}`, { recursive: true });
        }
        const inodes = boxes.map((b) => netnsInodeOf(`/proc/${b.client.pid}/ns/net`));
        // As a runtime does: every process of the container in its cgroup (again once the Python ones run).
        const enlist = (): void =>
          specs.forEach((c, i) => {
            for (const pid of pidsIn(inodes[i]!)) {
              try {
                writeFileSync(`${CGROUP2}/${c.dirs[c.dirs.length - 1]}/cgroup.procs`, String(pid));
              } catch (e) {
                // Exited since it was listed (a CI run once met one): nothing to enlist.
                if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
              }
            }
          });
        enlist();
        const top = startTwlab(undefined, [
          'top',
          '-A',
          '--json',
          '--port',
          String(PORT),
          '--duration',
          '120',
        ]);
        await top.ready;
        const runs = await Promise.all(boxes.map((b) => churn(b.client, 150, enlist)));
        const tws = await Promise.all(boxes.map((b) => timeWaits(b.client)));
        enlist();
        top.interrupt();
        const r = await top.done;
        runs.forEach(stop);
        expect(r.code, r.stderr).toBe(130);
        const doc = JSON.parse(r.stdout) as TopDocument;
        specs.forEach((c, i) => {
          const mine: TopDocument = { ...doc, processes: doc.processes.filter((p) => p.netns === inodes[i]) };
          expectAttributed(mine, runs[i]!, tws[i]!);
          for (const p of mine.processes) expect(p.owner).toMatchObject({ kind: 'container', id: c.id });
        });
        expect(doc.processes.filter((p) => p.pid === 0)).toEqual([]);
      } finally {
        for (const b of boxes) await b.close();
        for (const c of specs) await removeCgroupDirs(c.dirs);
      }
    },
    120_000,
  );

  itNs(
    'a ring buffer too small for the burst: lost events are reported, not a silently short count',
    async () => {
      const box = await createSandbox({ hosts: 1 });
      try {
        const args = ['top', '--json', '--port', String(PORT), '--duration', '120', '--buffer-kb', '4'];
        const top = startTwlab(box.client, args);
        await top.ready;
        const run = await churn(box.client, 3000);
        top.interrupt();
        const r = await top.done;
        stop(run);
        expect(r.code, r.stderr).toBe(130);
        const doc = JSON.parse(r.stdout) as TopDocument;
        expect(run.client.ok).toBe(3000);
        expect(doc.lost.events).toBeGreaterThan(0);
        expect(doc.lost.reason).toMatch(/ring buffer .*full/);
      } finally {
        await box.close();
      }
    },
    90_000,
  );
});

describeNs('twlab trace: transitions and timelines carry the owning process', () => {
  itNs(
    "the server's transitions and connections carry the server's pid, the client's the client's",
    async () => {
      const box = await createSandbox({ hosts: 1 });
      try {
        const trace = startTwlab(box.client, [
          'trace',
          '--json',
          '--port',
          String(PORT),
          '--duration',
          '120',
        ]);
        await trace.ready;
        const run = await churn(box.client, 5);
        trace.interrupt();
        const r = await trace.done;
        stop(run);
        expect(r.code, r.stderr).toBe(130);
        const doc = JSON.parse(r.stdout) as {
          transitions: Transition[];
          connections: ConnectionTimeline[];
          namespaces: { inode: number; owner: unknown }[];
        };
        const serverSide = doc.transitions.filter((t) => t.local.port === PORT);
        const clientSide = doc.transitions.filter((t) => t.remote.port === PORT);
        // LISTEN, and per connection LISTEN -> SYN-RECV -> ESTAB -> CLOSE-WAIT -> LAST-ACK -> CLOSE.
        expect(serverSide.length).toBeGreaterThanOrEqual(1 + 5 * 5);
        expect(new Set(serverSide.map((t) => t.pid))).toEqual(new Set([run.server]));
        expect(new Set(clientSide.map((t) => t.pid))).toEqual(new Set([run.client.pid]));
        const servers = doc.connections.filter((c) => c.role === 'server');
        expect(servers).toHaveLength(5);
        expect(servers.every((c) => c.pid === run.server && c.pidFrom === 'syscall')).toBe(true);
        const clients = doc.connections.filter((c) => c.role === 'client');
        expect(clients).toHaveLength(5);
        expect(clients.every((c) => c.pid === run.client.pid)).toBe(true);
        const inode = netnsInodeOf(`/proc/${box.client.pid}/ns/net`);
        expect(doc.connections.every((c) => c.netns === inode)).toBe(true);
        expect(doc.namespaces.map((n) => n.inode)).toEqual([inode]);
      } finally {
        await box.close();
      }
    },
    90_000,
  );
});
