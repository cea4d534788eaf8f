/**
 * One sandbox host, in both modes (as root, and in an unprivileged user namespace): isolation,
 * sysctls, exec/spawn, call. Everything is checked against the kernel: the host's own sysctls
 * and interfaces are read for comparison, never written.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { RunError, UsageError } from '../../src/common/errors.js';
import { createSandbox } from '../../src/sandbox/index.js';
import type { Sandbox } from '../../src/sandbox/index.js';
import { describeNs, ownNetns, procInfo, processesWhere, stillAlive, waitFor } from '../helpers/sandbox.js';

const PROBE = 'sandbox/probe.js';

const hostSysctl = (name: string): string =>
  readFileSync(`/proc/sys/net/ipv4/${name}`, 'utf8').trim().split(/\s+/).join(' ');

/** Values that differ from the host's current ones, so "applied" cannot be a coincidence. */
const hostReuse = hostSysctl('tcp_tw_reuse');
const wantReuse = hostReuse === '0' ? '1' : '0';
const hostRange = hostSysctl('ip_local_port_range');
const wantRange = hostRange === '50000 50099' ? '40000 40099' : '50000 50099';
const hostFin = hostSysctl('tcp_fin_timeout');
const wantFin = hostFin === '7' ? '8' : '7';

const modes = process.getuid?.() === 0 ? (['root', 'userns'] as const) : (['userns'] as const);

for (const mode of modes) {
  describeNs(`sandbox with 1 host (${mode})`, () => {
    let box: Sandbox;
    beforeAll(async () => {
      const [low, high] = wantRange.split(' ').map(Number) as [number, number];
      box = await createSandbox({
        hosts: 1,
        mode,
        portRange: { low, high },
        sysctls: {
          tcp_tw_reuse: wantReuse,
          'net.ipv4.tcp_fin_timeout': wantFin,
          tcp_tw_recycle: 1,
          tcp_tw_reuse_delay: 0, // the kernel's minimum is 1 ms
          'net.ipv4.ip_local_reserved_ports': 'abc',
        },
      });
    });
    afterAll(async () => box?.close());

    it('reports its mode, kernel and one host that is both client and server', () => {
      expect(box.mode).toBe(mode);
      expect(box.kernel).toBe(readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim());
      expect(box.hosts).toHaveLength(1);
      expect(box.client).toBe(box.server);
      expect(box.client.address).toBe('127.0.0.1');
      expect(box.client.role).toBe('client');
    });

    it('has loopback up and none of the host interfaces', async () => {
      const r = await box.client.exec(['ip', '-o', 'link', 'show']);
      expect(r.code).toBe(0);
      const names = r.stdout
        .trim()
        .split('\n')
        .map((l) => l.split(':')[1]!.trim());
      expect(names).toEqual(['lo']);
      expect(r.stdout).toMatch(/<LOOPBACK,UP,LOWER_UP>/);
      const addrs = await box.client.exec(['ip', '-o', '-4', 'addr', 'show']);
      expect(addrs.stdout).toMatch(/inet 127\.0\.0\.1\/8/);
      // The host has at least one interface besides lo that the sandbox does not see.
      expect(readdirSync('/sys/class/net').length).toBeGreaterThanOrEqual(1);
    });

    it('runs programs in its own network namespace, not the host one', async () => {
      const r = await box.client.exec(['readlink', '/proc/self/ns/net']);
      expect(r.stdout.trim()).toMatch(/^net:\[\d+\]$/);
      expect(r.stdout.trim()).not.toBe(ownNetns);
      expect(readFileSync(`/proc/${box.client.pid}/cmdline`, 'utf8')).toContain('sandbox/agent.js');
    });

    it('applies sysctls, reads them back, and leaves the host values unchanged', async () => {
      const applied = Object.fromEntries(
        box.sysctls.filter((o) => o.status === 'applied').map((o) => [o.key, o]),
      );
      expect(applied['net.ipv4.tcp_tw_reuse']).toMatchObject({ value: wantReuse, requested: wantReuse });
      expect(applied['net.ipv4.ip_local_port_range']).toMatchObject({ value: wantRange });
      expect(applied['net.ipv4.tcp_fin_timeout']).toMatchObject({ value: wantFin, hosts: ['client'] });
      // Read back through the kernel, three ways: readSysctl, a program in the host, the host's own.
      expect(await box.client.readSysctl('tcp_tw_reuse')).toBe(wantReuse);
      expect(await box.client.readSysctl('net.ipv4.ip_local_port_range')).toBe(wantRange);
      const r = await box.client.exec(['cat', '/proc/sys/net/ipv4/tcp_fin_timeout']);
      expect(r.stdout.trim()).toBe(wantFin);
      expect(hostSysctl('tcp_tw_reuse')).toBe(hostReuse);
      expect(hostSysctl('ip_local_port_range')).toBe(hostRange);
      expect(hostSysctl('tcp_fin_timeout')).toBe(hostFin);
    });

    it('reports outcomes in request order, port range first', () => {
      expect(box.sysctls.map((o) => o.key)).toEqual([
        'net.ipv4.ip_local_port_range',
        'net.ipv4.tcp_tw_reuse',
        'net.ipv4.tcp_fin_timeout',
        'net.ipv4.tcp_tw_recycle',
        'net.ipv4.tcp_tw_reuse_delay',
        'net.ipv4.ip_local_reserved_ports',
      ]);
    });

    it('reports a key this kernel lacks as not-present (tcp_tw_recycle, removed in 4.12)', async () => {
      expect(box.sysctls.find((o) => o.key === 'net.ipv4.tcp_tw_recycle')).toEqual({
        key: 'net.ipv4.tcp_tw_recycle',
        requested: '1',
        status: 'not-present',
        hosts: ['client'],
      });
      expect(await box.client.readSysctl('tcp_tw_recycle')).toBeUndefined();
    });

    it('reports a value the kernel refuses as rejected with its errno name', async () => {
      expect(box.sysctls.find((o) => o.key === 'net.ipv4.tcp_tw_reuse_delay')).toMatchObject({
        status: 'rejected',
        reason: 'EINVAL',
        requested: '0',
      });
      expect(box.sysctls.find((o) => o.key === 'net.ipv4.ip_local_reserved_ports')).toMatchObject({
        status: 'rejected',
        reason: 'EINVAL',
      });
      // The rejected write left the namespace's own default in place.
      expect(Number(await box.client.readSysctl('tcp_tw_reuse_delay'))).toBeGreaterThanOrEqual(1);
    });

    it('exec: exit code, output, input, env; a signal is reported as the signal', async () => {
      const r = await box.client.exec(['sh', '-c', 'read x; echo "out:$x:$FOO"; echo err >&2; exit 7'], {
        input: 'hello\n',
        env: { FOO: 'bar' },
      });
      expect(r).toEqual({ code: 7, signal: null, stdout: 'out:hello:bar\n', stderr: 'err\n' });
      const k = await box.client.exec(['sh', '-c', 'kill -TERM $$']);
      expect(k.signal).toBe('SIGTERM');
      expect(k.code).toBeNull();
      const missing = await box.client.exec(['/nonexistent/program']);
      expect(missing.code).toBe(127);
    });

    it('exec: killed after its timeout, with the program', async () => {
      const t0 = Date.now();
      // sh's child sleep holds the output pipe: the whole tree must go.
      const r = await box.client.exec(['sh', '-c', 'sleep 30; echo never'], { timeoutMs: 300 });
      expect(Date.now() - t0).toBeLessThan(10_000);
      expect(r.signal).toBe('SIGKILL');
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/killed after 300 ms/);
      // Nothing but the agent is left in the host's pid namespace.
      const pidns = procInfo(box.client.pid)!.pidns;
      expect(processesWhere((p) => p.pidns === pidns).map((p) => p.pid)).toEqual([box.client.pid]);
    });

    it('spawn: kill() delivers the signal to the program itself', async () => {
      const child = box.client.spawn([
        'sh',
        '-c',
        'trap "echo got-term; exit 42" TERM; echo ready; while :; do sleep 0.05; done',
      ]);
      let out = '';
      child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
      expect(await waitFor(() => out.includes('ready'), 10_000)).toBe(true);
      const exited = new Promise<[number | null, string | null]>((resolve) =>
        child.on('exit', (code, signal) => resolve([code, signal])),
      );
      child.kill('SIGTERM');
      expect(await exited).toEqual([42, null]);
      expect(out).toContain('got-term');
    });

    it('call: result, ordered events, and errors with code/errno/syscall', async () => {
      const events: unknown[] = [];
      const r = await box.client.call<{ values: unknown[]; netns: string }>(
        'sandbox/probe.js',
        'echo',
        [[1, 'two', { three: [3] }]],
        (e) => events.push(e),
      );
      expect(events).toEqual([1, 'two', { three: [3] }]);
      expect(r.values).toEqual(events);
      expect(r.netns).not.toBe(ownNetns);
      const err = await box.client
        .call('sandbox/probe.js', 'fail', ['EADDRNOTAVAIL', -99, 'connect'])
        .catch((e) => e);
      expect(err).toBeInstanceOf(Error);
      expect(err).toMatchObject({ code: 'EADDRNOTAVAIL', errno: -99, syscall: 'connect' });
      // A real kernel error: connect to a closed port on loopback.
      const refused = await box.client
        .call('sandbox/probe.js', 'connectOnce', ['127.0.0.1', 9, 5000])
        .catch((e) => e);
      expect(refused).toMatchObject({ code: 'ECONNREFUSED', syscall: 'connect' });
    });

    it('call: emit follows the arguments only when the caller listens for events', async () => {
      expect(await box.client.call(PROBE, 'argTypes', [1])).toEqual(['number']);
      expect(await box.client.call(PROBE, 'argTypes', [1], () => undefined)).toEqual(['number', 'function']);
    });

    it('call: unknown module or function, and UsageError keeps its class', async () => {
      await expect(box.client.call('sandbox/nope.js', 'x', [])).rejects.toMatchObject({
        code: 'ERR_MODULE_NOT_FOUND',
      });
      await expect(box.client.call('sandbox/probe.js', 'nope', [])).rejects.toThrow(
        /no exported function 'nope'/,
      );
      await expect(box.client.call('../etc/passwd', 'x', [])).rejects.toThrow(/not a path relative to dist/);
      const usage = await box.client
        .call('common/parse.js', 'parsePort', ['70000', '--port'])
        .catch((e: unknown) => e);
      expect(usage).toBeInstanceOf(UsageError);
      expect((usage as Error).message).toMatch(/--port: 70000 is out of range/);
    });

    it('call: a result JSON cannot carry, or a throw outside the call, leaves the agent alive', async () => {
      await expect(box.client.call(PROBE, 'unserialisable', [])).rejects.toThrow(/BigInt/);
      expect(await box.client.call(PROBE, 'throwLater', [10])).toBe('scheduled');
      await new Promise((r) => setTimeout(r, 100));
      expect(await box.client.call<{ values: unknown[] }>(PROBE, 'echo', [['still here']])).toMatchObject({
        values: ['still here'],
      });
    });

    it('call: concurrent calls are answered by id', async () => {
      const calls = Array.from({ length: 20 }, (_, i) => {
        const events: unknown[] = [];
        return box.client
          .call<{ values: unknown[] }>('sandbox/probe.js', 'echo', [[i, i * 2]], (e) => events.push(e))
          .then((r) => ({ r, events, i }));
      });
      for (const { r, events, i } of await Promise.all(calls)) {
        expect(r.values).toEqual([i, i * 2]);
        expect(events).toEqual([i, i * 2]);
      }
    });
  });
}

describeNs('sandbox lifecycle', () => {
  it('close() is idempotent, kills the host, and later use is a RunError', async () => {
    const box = await createSandbox({});
    const child = box.client.spawn(['sleep', '100']);
    const exited = new Promise((resolve) => child.on('exit', resolve));
    const agent = procInfo(box.client.pid)!;
    await Promise.all([box.close(), box.close()]);
    await box.close();
    await exited;
    expect(stillAlive([agent])).toEqual([]);
    await expect(box.client.exec(['true'])).rejects.toBeInstanceOf(RunError);
    await expect(box.client.call('sandbox/probe.js', 'echo', [[]])).rejects.toBeInstanceOf(RunError);
    expect(() => box.client.spawn(['true'])).toThrow(RunError);
  });

  it('a host whose agent dies fails its pending and later calls with a RunError', async () => {
    const box = await createSandbox({});
    try {
      const pending = box.client
        .call(PROBE, 'acceptOne', ['127.0.0.1', 8080, 20_000])
        .catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 200));
      process.kill(box.client.pid, 'SIGKILL');
      const err = await pending;
      expect(err).toBeInstanceOf(RunError);
      expect((err as Error).message).toMatch(/sandbox host client: its agent exited/);
      await expect(box.client.call(PROBE, 'echo', [[]])).rejects.toBeInstanceOf(RunError);
    } finally {
      await box.close();
    }
  });

  it('a control channel that fails (ECONNRESET as its agent dies) is a failed host, not a crash', async () => {
    const box = await createSandbox({});
    try {
      // The agent's side of twlab, as an interrupted lab saw it once: the read fails with ECONNRESET.
      const agent = (box.client as unknown as { agent: { channel: import('node:net').Socket } }).agent;
      const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET', errno: -104 });
      agent.channel.destroy(reset);
      process.kill(box.client.pid, 'SIGKILL');
      await expect(box.client.call(PROBE, 'echo', [[]])).rejects.toBeInstanceOf(RunError);
    } finally {
      await box.close();
    }
  });

  it('programs find the sbin tools even when PATH lacks them', async () => {
    const box = await createSandbox({});
    try {
      const r = await box.client.exec(['sh', '-c', 'command -v ip'], { env: { PATH: '/usr/bin:/bin' } });
      expect(r.stdout.trim()).toMatch(/\/s?bin\/ip$/);
    } finally {
      await box.close();
    }
  });

  it('refuses a bad spec before starting anything', async () => {
    await expect(createSandbox({ hosts: 4 as 1 })).rejects.toThrow(/hosts: 4 is not accepted/);
    await expect(createSandbox({ sysctls: { 'kernel.pid_max': 1 } })).rejects.toBeInstanceOf(UsageError);
    await expect(createSandbox({ sysctls: { tcp_tw_reuse: '1\n2' } })).rejects.toThrow(
      /tcp_tw_reuse: '1\\n2' is not accepted \(accepted: one non-empty line/,
    );
  });

  it('a startup timeout is a RunError saying so', async () => {
    await expect(createSandbox({ startupTimeoutMs: 1, mode: 'root' })).rejects.toThrow(
      /did not start within 1 ms/,
    );
  });
});
