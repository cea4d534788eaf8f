/**
 * `twlab trace` against the kernel. The traffic runs in a sandbox; the tracer runs inside the same
 * sandbox host (tracefs is global, and its sock_diag lookups of TIME-WAIT minisockets must see
 * that host's namespace), filtered by the sandbox's port.
 *
 * TIME_WAIT lasts 60 s. To see its end within the test's budget, the test assassinates it the
 * way RFC 1337 describes: after the client closed first and sits in TIME-WAIT, the server closes
 * its listener and connects from its port to the client's port. The TIME-WAIT socket has no
 * listener to hand the SYN to, so it answers with an ACK, the connecting side answers that with
 * an RST whose sequence number is exactly the one TIME-WAIT expects, and (tcp_rfc1337=0, the
 * default) the kernel kills the minisocket. Both the tracer and `ss` must see it gone long
 * before its 60 s timer.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { twlabArgv } from '../../src/common/paths.js';
import {
  startTrace,
  type ConnectionTimeline,
  type FailedConnect,
  type TraceResult,
  type Transition,
} from '../../src/observe/trace.js';
import { TRACE_DIAG } from '../../src/lab/probes/remote.js';
import { remote, withSandbox } from '../../src/sandbox/index.js';
import type { SandboxHost } from '../../src/sandbox/types.js';
import { netnsInodeOf } from '../../src/sockets/netns.js';
import { runCli } from '../helpers/cli.js';
import { describeNs } from '../helpers/sandbox.js';

/**
 * tracefs is global: a tracer also sees other namespaces' traffic on its port. A port of this
 * test process's own (outside the 50000+ ranges the sandboxes use) keeps concurrent runs apart.
 */
const PORT = 20000 + (process.pid % 20000);
const INSTANCES = '/sys/kernel/tracing/instances';

interface TraceDoc {
  instance: string;
  transitions: Transition[];
  connections: ConnectionTimeline[];
  failedConnects: FailedConnect[];
  connectErrnos: boolean;
}

interface Tracer {
  child: ChildProcess;
  /** Resolves with the instance name once events are enabled (the ready line on stderr). */
  ready: Promise<string>;
  exited: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

function startTracer(host: SandboxHost, ...args: string[]): Tracer {
  const child = host.spawn(twlabArgv('trace', ...args));
  let stdout = '';
  let stderr = '';
  let onReady: (name: string) => void = () => {};
  const ready = new Promise<string>((resolve) => (onReady = resolve));
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
    const m = /tracefs instance (\S+)\n/.exec(stderr); // a whole line: chunks may split it
    if (m) onReady(m[1]!);
  });
  const exited = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code) => resolve({ code, stdout, stderr })),
  );
  void exited.then((r) => onReady(`(exited ${r.code}: ${r.stderr.trim()})`));
  return { child, ready, exited };
}

/**
 * One connection, client closes first; then (after `assassinateAfterS`) the TIME-WAIT is killed
 * by a SYN from the server's port. Prints JSON: the client's port, its host pid, and ss's view.
 */
const ONE_CONNECTION = `
import socket, time, subprocess, json, sys
P = ${PORT}
H = sys.argv[2] if len(sys.argv) > 2 else '127.0.0.1'
F = socket.AF_INET6 if ':' in H else socket.AF_INET
def ss(port):
    out = subprocess.run(['ss', '-tanH', 'state', 'time-wait', 'sport', '=', str(port)], capture_output=True, text=True).stdout
    return [l for l in out.splitlines() if l.strip()]
l = socket.socket(F); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((H, P)); l.listen(8)
c = socket.create_connection((H, P)); a, _ = l.accept()
cport = c.getsockname()[1]
c.sendall(b'foo'); a.recv(3)
c.close(); time.sleep(0.2); a.close(); time.sleep(float(sys.argv[1]))
tw_before = ss(cport)
l.close()
s = socket.socket(F); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((H, P)); s.settimeout(3)
try:
    s.connect((H, cport))
except OSError as e:
    pass
s.close(); time.sleep(0.3)
print(json.dumps({'cport': cport, 'twBefore': tw_before, 'twAfter': ss(cport)}), flush=True)
time.sleep(float(sys.argv[3]) if len(sys.argv) > 3 else 0)  # linger: see the library test
`;

/**
 * With one ephemeral port and tcp_tw_reuse=1, a second connect() after tcp_tw_reuse_delay takes
 * over the first connection's TIME-WAIT 4-tuple.
 */
const REUSE = `
import socket, time, json
P = ${PORT}
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(('127.0.0.1', P)); l.listen(8)
ports = []
for i in range(2):
    c = socket.create_connection(('127.0.0.1', P)); a, _ = l.accept()
    ports.append(c.getsockname()[1])
    c.close(); time.sleep(0.1); a.close()
    if i == 0: time.sleep(1.5)
print(json.dumps({'ports': ports}))
`;

/** Connect to P until the 10-port range runs out; report each errno. The server never accepts. */
const CHURN = `
import socket, errno, json, os, time
P = ${PORT}
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(('127.0.0.1', P)); l.listen(64)
results = []
for i in range(14):
    c = socket.socket()
    try:
        c.connect(('127.0.0.1', P)); results.append(0)
    except OSError as e:
        results.append(e.errno)
    c.close()
time.sleep(1.5)  # hold the listener: its unaccepted peers keep the ports in FIN-WAIT-2 meanwhile,
# long enough for the tracer's sock_diag lookups to find them on a loaded machine
nspid = [l for l in open('/proc/self/status') if l.startswith('NSpid:')][0].split()[1]
print(json.dumps({'results': results, 'hostPid': int(nspid)}))
`;

/**
 * A refused connect() as python3; once told to (a line on stdin), execve() of the same interpreter
 * under another name (argv[1], through a symlink: the kernel takes a task's command from the name
 * it ran), which connects again at once. Prints the host pid.
 */
const EXEC = `
import socket, os, sys, tempfile
P = ${PORT}
c = socket.socket()
try:
    c.connect(('127.0.0.1', P))
except OSError:
    pass
c.close()
sys.stdin.readline()  # the tracer has printed that connect, with who made it
d = tempfile.mkdtemp()
link = os.path.join(d, 'twlab-execd')
os.symlink(sys.executable, link)
nspid = [l for l in open('/proc/self/status') if l.startswith('NSpid:')][0].split()[1]
os.execv(link, [link, '-c', sys.argv[1], nspid, d])
`;
const AFTER_EXEC = `
import socket, sys, json, shutil
c = socket.socket()
try:
    c.connect(('127.0.0.1', ${PORT}))
except OSError:
    pass
c.close()
shutil.rmtree(sys.argv[2])
print(json.dumps({'hostPid': int(sys.argv[1]), 'comm': open('/proc/self/comm').read().strip()}), flush=True)
`;

function side(doc: TraceDoc, localPort: number, remotePort: number): Transition[] {
  return doc.transitions.filter((t) => t.local.port === localPort && t.remote.port === remotePort);
}

const states = (ts: Transition[]): string[] => ts.map((t) => `${t.oldState}>${t.newState}:${t.source}`);

/**
 * `twlab trace --port PORT --duration 6 [traceArgs]` in `host` while `python3 -c` runs `python`
 * (the script and its arguments) there. The script must write nothing on stderr and the tracer
 * must exit 0. `whileTracing` runs once the tracer is ready (with its tracefs instance's name),
 * before the script starts.
 */
async function traceScript<T>(
  host: SandboxHost,
  python: string[],
  traceArgs: string[] = [],
  whileTracing?: (instance: string) => void,
): Promise<{ py: T; stdout: string; instance: string }> {
  const tracer = startTracer(host, '--port', String(PORT), '--duration', '6', ...traceArgs);
  const instance = await tracer.ready;
  whileTracing?.(instance);
  const run = await host.exec(['python3', '-c', ...python], { timeoutMs: 20_000 });
  expect(run.stderr).toBe('');
  const py = JSON.parse(run.stdout) as T;
  const out = await tracer.exited;
  expect(out.code, out.stderr).toBe(0);
  return { py, stdout: out.stdout, instance };
}

describeNs('twlab trace', () => {
  it('one connection: both sides in order, with the TIME-WAIT phase (entered, ended early by an RST) on the side that closed first', async () => {
    await withSandbox({ hosts: 1 }, async (box) => {
      const { py, stdout, instance } = await traceScript<{
        cport: number;
        twBefore: string[];
        twAfter: string[];
      }>(box.client, [ONE_CONNECTION, '1.5'], ['--json'], (name) => {
        expect(name).toMatch(/^twlab-/);
        expect(existsSync(`${INSTANCES}/${name}`)).toBe(true);
      });
      // ss agrees: TIME-WAIT before the assassination, gone after it.
      expect(py.twBefore).toHaveLength(1);
      expect(py.twAfter).toHaveLength(0);
      const doc = JSON.parse(stdout) as TraceDoc;
      expect(existsSync(`${INSTANCES}/${instance}`)).toBe(false);

      const client = side(doc, py.cport, PORT);
      expect(states(client)).toEqual([
        'SYN-SENT>ESTAB:tracepoint',
        'ESTAB>FIN-WAIT-1:tracepoint',
        'FIN-WAIT-1>FIN-WAIT-2:tracepoint',
        'FIN-WAIT-2>CLOSE:tracepoint',
        'FIN-WAIT-2>TIME-WAIT:sock_diag',
        'TIME-WAIT>CLOSE:sock_diag',
      ]);
      const entered = client[4]!;
      const ended = client[5]!;
      expect(entered.expiresMs).toBeGreaterThan(55_000);
      expect(entered.expiresMs).toBeLessThanOrEqual(60_000);
      expect(ended.endReason).toBe('early');
      expect(ended.inOldStateMs!).toBeGreaterThan(1000); // the script waited 1.5 s in TIME-WAIT
      expect(ended.inOldStateMs!).toBeLessThan(5000);
      expect(ended.expectedEndMs! - ended.timeMs).toBeGreaterThan(50_000);
      // Times never go backwards along one socket.
      for (let i = 1; i < client.length; i++)
        expect(client[i]!.timeMs).toBeGreaterThanOrEqual(client[i - 1]!.timeMs);

      // The connect() that started it: local port 0 until the kernel picks one.
      const start = doc.transitions.find(
        (t) =>
          t.oldState === 'CLOSE' && t.newState === 'SYN-SENT' && t.local.port === 0 && t.remote.port === PORT,
      );
      expect(start?.task).toBe('python3');

      const server = side(doc, PORT, py.cport);
      expect(states(server).slice(0, 5)).toEqual([
        'LISTEN>SYN-RECV:tracepoint',
        'SYN-RECV>ESTAB:tracepoint',
        'ESTAB>CLOSE-WAIT:tracepoint',
        'CLOSE-WAIT>LAST-ACK:tracepoint',
        'LAST-ACK>CLOSE:tracepoint',
      ]);
      // The peer's FIN (its LAST-ACK) is when the client's minisocket entered TIME-WAIT.
      expect(entered.timeMs).toBe(server[3]!.timeMs);

      const timeline = doc.connections.find((c) => c.local.port === py.cport && c.remote.port === PORT)!;
      expect(timeline).toMatchObject({ role: 'client', closedFirst: true, complete: true });
      expect(timeline.phases.map((p) => p.state)).toEqual([
        'SYN-SENT',
        'ESTAB',
        'FIN-WAIT-1',
        'FIN-WAIT-2',
        'TIME-WAIT',
        'CLOSE',
      ]);
      expect(timeline.timeWait).toMatchObject({ endReason: 'early' });
      const serverTimeline = doc.connections.find(
        (c) => c.local.port === PORT && c.remote.port === py.cport,
      )!;
      expect(serverTimeline).toMatchObject({ role: 'server', closedFirst: false });
      expect(serverTimeline.timeWait).toBeUndefined();
    });
  }, 40_000);

  it('a churn that runs out of ports: each failed connect() with EADDRNOTAVAIL, the process and the destination', async () => {
    await withSandbox(
      { hosts: 1, portRange: { low: 50000, high: 50009 }, sysctls: { tcp_tw_reuse: 0 } },
      async (box) => {
        const { py, stdout } = await traceScript<{ results: number[]; hostPid: number }>(
          box.client,
          [CHURN],
          ['--json'],
        );
        const failures = py.results.filter((e) => e !== 0);
        // The kernel decides: 10 ports, then EADDRNOTAVAIL (99) for the rest.
        expect(py.results.filter((e) => e === 0)).toHaveLength(10);
        expect(failures).toEqual(Array(4).fill(99));
        const doc = JSON.parse(stdout) as TraceDoc;
        expect(doc.connectErrnos).toBe(true);
        expect(doc.failedConnects).toHaveLength(failures.length);
        for (const f of doc.failedConnects) {
          expect(f).toMatchObject({
            kind: 'connect-failed',
            errno: 'EADDRNOTAVAIL',
            code: 99,
            task: 'python3',
            pid: py.hostPid,
            remote: { address: '127.0.0.1', port: PORT },
            localPort: 0,
          });
        }
        // Each failure shows as CLOSE -> SYN-SENT -> CLOSE with local port 0.
        const zero = doc.transitions.filter((t) => t.local.port === 0 && t.oldState === 'SYN-SENT');
        expect(zero).toHaveLength(failures.length);
        // The 10 that got a port closed first, but the server never accepted them: their ports
        // were held by orphaned FIN-WAIT-2 minisockets (seen by sock_diag), which vanished without
        // a TIME-WAIT when the script exited and its listener reset the unaccepted peers.
        const clients = doc.connections.filter((c) => c.role === 'client' && c.remote.port === PORT);
        expect(clients).toHaveLength(10);
        expect(new Set(clients.map((c) => c.local.port)).size).toBe(10);
        for (const c of clients) {
          expect(c.local.port).toBeGreaterThanOrEqual(50000);
          expect(c.local.port).toBeLessThanOrEqual(50009);
          expect(c).toMatchObject({ closedFirst: true, complete: true });
          expect(c.phases.slice(-2).map((p) => `${p.state}:${p.source}`)).toEqual([
            'FIN-WAIT-2:tracepoint',
            'CLOSE:sock_diag',
          ]);
          expect(c.timeWait).toBeUndefined();
        }
      },
    );
  }, 40_000);

  it('a process that runs execve() is named by the command it runs at each connect()', async () => {
    await withSandbox({ hosts: 1 }, async (box) => {
      const tracer = startTracer(box.client, '--port', String(PORT), '--duration', '30');
      await tracer.ready;
      const start = new RegExp(`127\\.0\\.0\\.1:0 +127\\.0\\.0\\.1:${PORT} +CLOSE -> SYN-SENT`);
      let live = '';
      const firstSeen = new Promise<void>((resolve) =>
        tracer.child.stdout!.on('data', (d: string) => {
          live += d;
          if (start.test(live)) resolve();
        }),
      );
      const py = box.client.spawn(['python3', '-c', EXEC, AFTER_EXEC]);
      let pyOut = '';
      py.stdout!.setEncoding('utf8').on('data', (d: string) => (pyOut += d));
      const pyDone = new Promise((resolve) => py.on('close', resolve));
      // Its first connect() is read (and who made it looked up) before the execve(): deterministic.
      await firstSeen;
      py.stdin!.end('go\n');
      await pyDone;
      const { hostPid, comm } = JSON.parse(pyOut) as { hostPid: number; comm: string };
      expect(comm).toBe('twlab-execd'); // what /proc says: the kernel took the new name
      tracer.child.kill('SIGINT');
      const out = await tracer.exited;
      expect(out.code, out.stderr).toBe(130);
      // One process, two commands: before execve() and after (within the task cache's 2 s).
      const starts = out.stdout
        .split('\n')
        .filter((l) => start.test(l))
        .map((l) => l.trim().split(/\s+/).slice(1, 3));
      expect(starts).toEqual([
        [String(hostPid), 'python3'],
        [String(hostPid), 'twlab-execd'],
      ]);
    });
  }, 60_000);

  it('IPv6: the same phases for a connection over ::1', async () => {
    await withSandbox({ hosts: 1 }, async (box) => {
      const { py, stdout } = await traceScript<{ cport: number; twBefore: string[]; twAfter: string[] }>(
        box.client,
        [ONE_CONNECTION, '0.5', '::1'],
        ['--json'],
      );
      expect(py.twBefore).toHaveLength(1);
      const client = side(JSON.parse(stdout) as TraceDoc, py.cport, PORT);
      expect(
        client.every((t) => t.family === 6 && t.local.address === '::1' && t.remote.address === '::1'),
      ).toBe(true);
      expect(states(client).slice(-2)).toEqual([
        'FIN-WAIT-2>TIME-WAIT:sock_diag',
        'TIME-WAIT>CLOSE:sock_diag',
      ]);
      expect(client.at(-1)!.endReason).toBe('early');
    });
  }, 30_000);

  it('tcp_tw_reuse: a new connect() taking over the TIME-WAIT 4-tuple ends it as "reused"', async () => {
    await withSandbox(
      { hosts: 1, portRange: { low: 50000, high: 50000 }, sysctls: { tcp_tw_reuse: 1 } },
      async (box) => {
        const { py, stdout } = await traceScript<{ ports: number[] }>(box.client, [REUSE], ['--json']);
        // The kernel reused the only port for the second connection.
        expect(py.ports).toEqual([50000, 50000]);
        const doc = JSON.parse(stdout) as TraceDoc;
        const timelines = doc.connections.filter((c) => c.role === 'client' && c.local.port === 50000);
        expect(timelines).toHaveLength(2);
        expect(timelines[0]!.timeWait).toMatchObject({ endReason: 'reused' });
        expect(timelines[0]!.phases.map((p) => p.state)).toEqual([
          'SYN-SENT',
          'ESTAB',
          'FIN-WAIT-1',
          'FIN-WAIT-2',
          'TIME-WAIT',
          'CLOSE',
        ]);
        // It ended when the second connection started, about 1.5 s after it began.
        const tw = timelines[0]!.timeWait!;
        expect(tw.endedMs! - tw.enteredMs).toBeGreaterThan(1000);
        expect(tw.endedMs!).toBeLessThanOrEqual(timelines[1]!.phases[0]!.startMs! + 1);
        expect(timelines[1]!.phases[0]).toMatchObject({ state: 'SYN-SENT' });
      },
    );
  }, 30_000);

  it('text output: tcpstates-like lines, the TIME-WAIT phase marked [sock_diag], a timeline, a summary', async () => {
    await withSandbox({ hosts: 1 }, async (box) => {
      const { py, stdout } = await traceScript<{ cport: number }>(box.client, [ONE_CONNECTION, '0.3']);
      const lines = stdout.split('\n');
      expect(lines[0]).toMatch(/^TIME\(s\)\s+PID\s+TASK\s+LOCAL\s+REMOTE\s+OLD -> NEW\s+MS$/);
      const mine = lines.filter((l) => l.includes(`127.0.0.1:${py.cport} `));
      expect(mine.some((l) => /ESTAB -> FIN-WAIT-1\s+[\d.]+ ms/.test(l))).toBe(true);
      expect(mine.some((l) => /FIN-WAIT-2 -> TIME-WAIT .*s left\s+\[sock_diag\]/.test(l))).toBe(true);
      expect(mine.some((l) => /TIME-WAIT -> CLOSE .*\[sock_diag\]/.test(l))).toBe(true);
      const timeline = lines.find((l) =>
        l.startsWith(`  connection 127.0.0.1:${py.cport} -> 127.0.0.1:${PORT}`),
      );
      expect(timeline).toMatch(
        /\(client, python3\/\d+, netns \d+, closed first\): SYN-SENT .* > ESTAB .* > TIME-WAIT [\d.]+ ms > CLOSE; TIME-WAIT ended early/,
      );
      expect(lines.at(-2)).toMatch(
        /^\d+ transitions, \d+ connections \(\d+ with a TIME-WAIT phase\), 0 failed connect\(\)$/,
      );
    });
  }, 30_000);

  it("library: two concurrent tracers in this process; lookups through the sandbox host and the default ones (in the socket's own namespace, entered from here) find the same TIME-WAIT", async () => {
    await withSandbox({ hosts: 1 }, async (box) => {
      // Same port, own instance: it must neither disturb the other tracer nor be disturbed.
      const here = await startTrace({ port: PORT, durationMs: 15_000 });
      const events: string[] = [];
      const trace = await startTrace({
        port: PORT,
        durationMs: 15_000,
        lookup: (queries) => remote(box.client, TRACE_DIAG).lookupMinisockets(queries),
        onEvent: (e) => events.push(e.kind),
      });
      expect(existsSync(`${INSTANCES}/${trace.instance}`)).toBe(true);
      // It lingers 3 s: a tracer behind by more than a process's life cannot read its namespace
      // (trace-tasks.ts), and two tracers in one loaded test process can be.
      const run = await box.client.exec(['python3', '-c', ONE_CONNECTION, '0.5', '127.0.0.1', '3'], {
        timeoutMs: 20_000,
      });
      const py = JSON.parse(run.stdout) as { cport: number };
      const result = await trace.stop();
      const local = await here.stop();
      expect(existsSync(`${INSTANCES}/${trace.instance}`)).toBe(false);
      expect(existsSync(`${INSTANCES}/${here.instance}`)).toBe(false);
      const mine = (r: TraceResult): ConnectionTimeline =>
        r.connections.find((c) => c.local.port === py.cport && c.remote.port === PORT)!;
      // The tracer in the test's namespace looks the minisocket up in the sandbox's, where its owner is.
      expect(mine(local).netns).toBe(netnsInodeOf(`/proc/${box.client.pid}/ns/net`));
      expect(mine(local).timeWait).toMatchObject({ endReason: 'early' });
      expect(mine(result).timeWait).toMatchObject({ endReason: 'early' });
      // Both saw the same tracepoint transitions (each instance stamps its own copy of an event,
      // a few microseconds apart, so times are not compared).
      const tp = (r: TraceResult): string[] =>
        r.transitions
          .filter((t) => t.source === 'tracepoint')
          .map((t) => `${t.local.port}-${t.remote.port} ${t.oldState}>${t.newState}`);
      expect(tp(local)).toEqual(tp(result));
      expect(events).toContain('connection');
      const client = result.transitions.filter((t) => t.local.port === py.cport && t.remote.port === PORT);
      expect(
        client.filter((t) => t.source === 'sock_diag').map((t) => `${t.oldState}>${t.newState}`),
      ).toEqual(['FIN-WAIT-2>TIME-WAIT', 'TIME-WAIT>CLOSE']);
    });
  }, 30_000);

  it('removes its instance on SIGINT, still prints its document, says "interrupted", exits 130', async () => {
    await withSandbox({ hosts: 1 }, async (box) => {
      const tracer = startTracer(box.client, '--port', String(PORT), '--duration', '60', '--json');
      const instance = await tracer.ready;
      expect(existsSync(`${INSTANCES}/${instance}`)).toBe(true);
      const t0 = Date.now();
      tracer.child.kill('SIGINT');
      const out = await tracer.exited;
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(out.code, out.stderr).toBe(130);
      expect(out.stderr).toMatch(/^twlab: interrupted$/m);
      expect(JSON.parse(out.stdout)).toMatchObject({ instance, transitions: [] });
      expect(existsSync(`${INSTANCES}/${instance}`)).toBe(false);
    });
  }, 30_000);
});

describe('twlab trace: bad flags and missing permission', () => {
  it.each([
    [['--port', '0'], /--port: 0 is out of range/],
    [['--port', 'http'], /--port: 'http' is not a whole number/],
    [['--duration', '0'], /--duration: 0 is out of range/],
    [['--duration', '3601'], /--duration: 3601 is out of range/],
    [['--duration', 'x'], /--duration: 'x' is not a decimal number/],
    [['--bogus'], /unknown option '--bogus'/],
  ])('%j: one line, exit 2', async (args, message) => {
    const r = await runCli(['trace', ...args]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stdout).toBe('');
  });

  it('--help shows examples', async () => {
    const r = await runCli(['trace', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Examples:\n\s+twlab trace --port 8080/);
  });

  it.runIf(process.getuid?.() === 0)('without root: one line naming what is needed, exit 1', async () => {
    const { spawn } = await import('node:child_process');
    const { CLI } = await import('../helpers/cli.js');
    const r = await new Promise<{ code: number | null; stderr: string; stdout: string }>((resolve) => {
      const child = spawn(process.execPath, [CLI, 'trace', '--duration', '1'], { uid: 65534, gid: 65534 });
      let stderr = '';
      let stdout = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.on('close', (code) => resolve({ code, stderr, stdout }));
    });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/^twlab: twlab trace needs root and tracefs/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stdout).toBe('');
  });
});
