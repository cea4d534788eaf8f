/**
 * twlab doctor in a sandbox: after a server-first close, the TIME-WAIT leftovers on the port are
 * named, and the bind prediction is checked by really binding (bind-attempt.py) in the same host,
 * with and without SO_REUSEADDR, for an old server that had SO_REUSEADDR and one that did not.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSandbox } from '../../src/sandbox/index.js';
import type { Sandbox } from '../../src/sandbox/index.js';
import { twlabArgv } from '../../src/common/paths.js';
import type { DoctorResult } from '../../src/observe/doctor.js';
import { describeNs } from '../helpers/sandbox.js';
import { runCli } from '../helpers/cli.js';

const SERVER_FIRST = fileURLToPath(new URL('./doctor-fixture.py', import.meta.url));
const BIND = fileURLToPath(new URL('./bind-attempt.py', import.meta.url));
const N = 5;

describeNs('twlab doctor --port in a sandbox', () => {
  let box: Sandbox;
  beforeAll(async () => {
    box = await createSandbox({ hosts: 1, sysctls: { tcp_tw_reuse: 0 } });
  }, 60_000);
  afterAll(async () => box?.close());

  const bindNow = async (port: number, reuse: boolean): Promise<string> => {
    const r = await box.client.exec(['python3', BIND, String(port), reuse ? '1' : '0']);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout.trim();
  };
  const doctor = async (...args: string[]): Promise<DoctorResult> => {
    const r = await box.client.exec(twlabArgv('doctor', '--json', ...args));
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as DoctorResult;
  };

  for (const oldReuse of [true, false]) {
    it(`names the TIME-WAIT leftovers after a server-first close and predicts the binds (old server SO_REUSEADDR ${oldReuse ? 'on' : 'off'})`, async () => {
      const port = oldReuse ? 8081 : 8082;
      const made = await box.client.exec([
        'python3',
        SERVER_FIRST,
        String(port),
        oldReuse ? '1' : '0',
        String(N),
      ]);
      expect(made.code, made.stderr).toBe(0);

      const d = await doctor('--port', String(port));
      const p = d.port!;
      expect(p.listeners).toHaveLength(0);
      expect(p.timeWait).toHaveLength(N);
      for (const h of p.timeWait) {
        expect(h.local).toBe(`127.0.0.1:${port}`);
        expect(h.expiresMs).toBeGreaterThan(0);
        expect(h.expiresMs).toBeLessThanOrEqual(60_000);
      }
      expect(d.findings[0]!.id).toBe('port');
      expect(d.findings[0]!.evidence['timeWait']).toBe(N);

      // Without SO_REUSEADDR: predicted to fail; the kernel agrees.
      expect(p.prediction.withoutReuseAddr.verdict).toBe('fails');
      expect(await bindNow(port, false)).toBe('EADDRINUSE');

      // With SO_REUSEADDR it depends on the old socket's own flag, which only a bind reveals.
      expect(p.prediction.withReuseAddr.verdict).toBe('depends');
      const actual = await bindNow(port, true);
      expect(actual).toBe(oldReuse ? 'bound' : 'EADDRINUSE');

      const tried = (await doctor('--port', String(port), '--try-bind')).port!.trial!;
      expect(tried.withoutReuseAddr.ok).toBe(false);
      expect(tried.withoutReuseAddr.ok ? 'bound' : tried.withoutReuseAddr.errno).toBe('EADDRINUSE');
      expect(tried.withReuseAddr.ok ? 'bound' : tried.withReuseAddr.errno).toBe(actual);
    }, 60_000);
  }

  it('predicts fail/fail for a live listener and succeed/succeed for a free port, as bind() does', async () => {
    const port = 8090;
    const holder = box.client.spawn([
      'python3',
      '-c',
      `import socket,sys\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(("0.0.0.0",${port}))\ns.listen(1)\nprint("ready",flush=True)\nsys.stdin.read()`,
    ]);
    await new Promise<void>((resolve) => holder.stdout!.once('data', () => resolve()));
    try {
      const p = (await doctor('--port', String(port))).port!;
      expect(p.listeners.map((l) => l.local)).toEqual([`0.0.0.0:${port}`]);
      expect(p.prediction.withoutReuseAddr.verdict).toBe('fails');
      expect(p.prediction.withReuseAddr.verdict).toBe('fails');
      expect(await bindNow(port, false)).toBe('EADDRINUSE');
      expect(await bindNow(port, true)).toBe('EADDRINUSE');
    } finally {
      holder.stdin!.end();
    }
    const free = (await doctor('--port', '8099')).port!;
    expect(free.listeners.length + free.timeWait.length + free.others.length).toBe(0);
    expect(free.prediction.withoutReuseAddr.verdict).toBe('succeeds');
    expect(await bindNow(8099, false)).toBe('bound');
    expect(await bindNow(8099, true)).toBe('bound');
  }, 60_000);

  it('reports the sysctls this kernel has, and advice only about settings that exist', async () => {
    const d = await doctor();
    const r = await box.client.exec([
      'sh',
      '-c',
      'cat /proc/sys/net/ipv4/tcp_tw_reuse /proc/sys/net/core/somaxconn',
    ]);
    const [reuse, somaxconn] = r.stdout.trim().split('\n');
    expect(d.sysctls['tcp_tw_reuse']).toBe(reuse);
    expect(d.sysctls['net.core.somaxconn']).toBe(somaxconn);
    const recycle = d.findings.find((f) => f.id === 'tw-recycle')!;
    expect(recycle.evidence['present']).toBe(existsSync('/proc/sys/net/ipv4/tcp_tw_recycle'));
    for (const f of d.findings)
      for (const x of f.fixes)
        if (x.setting?.startsWith('net.'))
          expect(Object.keys(d.sysctls).some((k) => x.setting!.endsWith(k))).toBe(true);
  }, 30_000);

  it('reports accept-queue overflows with the kernel counter and somaxconn', async () => {
    const holder = box.client.spawn([
      'python3',
      '-c',
      'import socket,sys,time\nl=socket.socket()\nl.bind(("127.0.0.1",8300))\nl.listen(0)\ncs=[]\n' +
        'for _ in range(5):\n  c=socket.socket()\n  c.setblocking(False)\n  c.connect_ex(("127.0.0.1",8300))\n  cs.append(c)\n' +
        'time.sleep(0.3)\nprint("ready",flush=True)\nsys.stdin.read()',
    ]);
    await new Promise<void>((resolve) => holder.stdout!.once('data', () => resolve()));
    try {
      const d = await doctor();
      const after = await box.client.exec([
        'sh',
        '-c',
        'awk \'/^TcpExt:/{if(!h){for(i=1;i<=NF;i++)n[i]=$i;h=1}else for(i=1;i<=NF;i++)if(n[i]=="ListenOverflows")print $i}\' /proc/net/netstat',
      ]);
      const f = d.findings.find((x) => x.id === 'listen-overflow')!;
      expect(f).toBeDefined();
      expect(f.evidence['ListenOverflows']).toBeGreaterThanOrEqual(1);
      expect(f.evidence['ListenOverflows']).toBeLessThanOrEqual(Number(after.stdout.trim()));
      expect(String(f.evidence['somaxconn'])).toBe(d.sysctls['net.core.somaxconn']);
    } finally {
      holder.stdin!.end();
    }
  }, 60_000);

  it('finds port pressure with evidence and ranked fixes after a client-first churn', async () => {
    const churn = await box.client.exec([
      'python3',
      '-c',
      `import socket\nl=socket.socket()\nl.bind(("127.0.0.1",8100))\nl.listen(512)\nfor _ in range(3000):\n  c=socket.create_connection(("127.0.0.1",8100))\n  s,_=l.accept()\n  c.close()\n  s.recv(1)\n  s.close()`,
    ]);
    expect(churn.code, churn.stderr).toBe(0);
    const d = await doctor();
    const f = d.findings.find((x) => x.id === 'port-pressure')!;
    expect(f).toBeDefined();
    expect(f.evidence['destination']).toBe('127.0.0.1:8100');
    expect(f.evidence['inUse']).toBe(3000);
    expect(f.fixes.map((x) => x.rank)).toEqual(f.fixes.map((_, i) => i + 1));
    expect(f.fixes[0]!.action).toMatch(/Reuse connections/);
    expect(f.fixes.at(-1)!.action).toMatch(/SO_LINGER/);
  }, 60_000);
});

describe('census and doctor flags', () => {
  const bad: string[][] = [
    ['census', '--state', 'bogus'],
    ['census', '--port', '70000'],
    ['census', '--window', '0'],
    ['census', '--source', 'ebpf'],
    ['census', '--top', 'x'],
    ['census', '--bogus'],
    ['doctor', '--port', 'abc'],
    ['doctor', '--address', 'example.com'],
  ];
  for (const args of bad) {
    it(`rejects ${args.join(' ')} in one line, exit 2`, async () => {
      const r = await runCli(args);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain(args[2] ?? args[1]!);
    });
  }
});

describeNs('twlab doctor when TIME-WAIT overflows tcp_max_tw_buckets', () => {
  let box: Sandbox;
  beforeAll(async () => {
    box = await createSandbox({ hosts: 1, sysctls: { tcp_tw_reuse: 0, tcp_max_tw_buckets: 50 } });
  }, 60_000);
  afterAll(async () => box?.close());

  it('reports the overflow with the kernel counter, and the table holds no more than the limit', async () => {
    const churn = await box.client.exec([
      'python3',
      '-c',
      'import socket\nl=socket.socket()\nl.bind(("127.0.0.1",8400))\nl.listen(512)\nfor _ in range(120):\n  c=socket.create_connection(("127.0.0.1",8400))\n  s,_=l.accept()\n  c.close()\n  s.recv(1)\n  s.close()',
    ]);
    expect(churn.code, churn.stderr).toBe(0);
    const r = await box.client.exec(twlabArgv('doctor', '--json'));
    const d = JSON.parse(r.stdout) as DoctorResult;
    const f = d.findings.find((x) => x.id === 'time-wait-buckets')!;
    expect(f).toBeDefined();
    expect(f.evidence['tcp_max_tw_buckets']).toBe(50);
    expect(f.evidence['TCPTimeWaitOverflow']).toBeGreaterThanOrEqual(70);
    expect(d.census.timeWait.count).toBeLessThanOrEqual(50);
    expect(d.census.timeWait.count + Number(f.evidence['TCPTimeWaitOverflow'])).toBe(120);
  }, 60_000);
});
