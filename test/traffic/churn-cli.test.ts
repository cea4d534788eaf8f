/**
 * Acceptance of `twlab churn` (issue 2, part 5): the built CLI, each run in its own sandbox with
 * its own `twlab serve`. Every number asserted is what the kernel did in that run.
 */
import { expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { describeNs } from '../helpers/sandbox.js';
import { createSandbox } from '../../src/sandbox/index.js';
import type { SandboxChurnSummary } from '../../src/traffic/churn-sandbox.js';

const PORTS = { low: 50000, high: 50099 };
const N_PORTS = PORTS.high - PORTS.low + 1;

async function churn(args: string[], timeoutMs = 55_000): Promise<SandboxChurnSummary> {
  const r = await runCli(
    [
      'churn',
      '--sandbox',
      '--port-range',
      `${PORTS.low}-${PORTS.high}`,
      '--to',
      '127.0.0.1:8080',
      '--json',
      ...args,
    ],
    { timeoutMs },
  );
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as SandboxChurnSummary;
}

function sysctlOutcome(s: SandboxChurnSummary, key: string): string | undefined {
  return s.settings.sandbox?.sysctls.find((x) => x.key === key)?.value;
}

describeNs('twlab churn --sandbox (real namespaces)', () => {
  it('tcp_tw_reuse=0 in 100 ports: fails at exactly iteration 101 with EADDRNOTAVAIL after 100 distinct ports', async () => {
    const s = await churn(['--sysctl', 'tcp_tw_reuse=0', '--count', '300']);
    expect(sysctlOutcome(s, 'net.ipv4.tcp_tw_reuse')).toBe('0');
    expect(s.settings.sysctls['net.ipv4.ip_local_port_range']).toBe(`${PORTS.low} ${PORTS.high}`);
    expect(s.firstError).toEqual({
      errno: 'EADDRNOTAVAIL',
      code: 99,
      syscall: 'connect',
      atIteration: N_PORTS + 1,
    });
    expect(s.attempted).toBe(N_PORTS + 1);
    expect(s.succeeded).toBe(N_PORTS);
    expect(s.failed).toBe(1);
    expect(s.localPortsUsed).toBe(N_PORTS);
    expect(s.localPortRangeSeen).toEqual(PORTS);
    expect(s.stoppedBy).toBe('error');
    // TCP runs are served by the raw engine (Node's accept queue overflows under a fast churn).
    expect(s.settings.sandbox?.server).toEqual(expect.arrayContaining(['--engine', 'raw']));
    expect(s.server?.settings.engine).toBe('raw');
    expect(s.server?.accepted).toBe(N_PORTS);
    expect(s.connectionsPerSecond).toBeGreaterThan(0);
    expect(s.latencyMs.p99).toBeGreaterThanOrEqual(s.latencyMs.p50);
  });

  it('tcp_tw_reuse=2 (loopback) reuses TIME_WAIT ports older than tcp_tw_reuse_delay; =0 at the same pace does not', async () => {
    // Pace the run so each port's TIME_WAIT is twice the reuse delay old when it comes round
    // again: 100 ports / rate >= 2 x delay. The delay is read from this kernel (1000 ms default;
    // kernels without the sysctl use a fixed 1 s).
    const box = await createSandbox({ hosts: 1 });
    const delayMs = Number((await box.client.readSysctl('net.ipv4.tcp_tw_reuse_delay')) ?? 1000);
    await box.close();
    const rate = N_PORTS / ((2 * delayMs) / 1000);
    const count = Math.round(N_PORTS * 2.5);
    const reused = await churn([
      '--sysctl',
      'tcp_tw_reuse=2',
      '--count',
      String(count),
      '--rate',
      String(rate),
    ]);
    expect(sysctlOutcome(reused, 'net.ipv4.tcp_tw_reuse')).toBe('2');
    expect(reused.firstError).toBeNull();
    expect(reused.succeeded).toBe(count);
    // More connections than ports, all in the range: TIME_WAIT ports were taken over.
    expect(reused.localPortsUsed).toBeLessThanOrEqual(N_PORTS);
    expect(reused.localPortRangeSeen!.low).toBeGreaterThanOrEqual(PORTS.low);
    expect(reused.localPortRangeSeen!.high).toBeLessThanOrEqual(PORTS.high);

    const strict = await churn([
      '--sysctl',
      'tcp_tw_reuse=0',
      '--count',
      String(count),
      '--rate',
      String(rate),
    ]);
    expect(strict.firstError?.errno).toBe('EADDRNOTAVAIL');
    expect(strict.firstError?.atIteration).toBe(N_PORTS + 1);
  });

  it('--reuse-connection sends every message over 1 local port', async () => {
    const s = await churn(['--sysctl', 'tcp_tw_reuse=0', '--reuse-connection', '--count', '500']);
    expect(s.firstError).toBeNull();
    expect(s.succeeded).toBe(500);
    expect(s.localPortsUsed).toBe(1);
    expect(s.settings.sandbox?.server).toContain('length-prefixed');
    // The server counted every framed message, on one accepted connection.
    expect(s.server?.messages).toBe(500);
    expect(s.server?.accepted).toBe(1);
  });

  it('--udp sends a datagram per iteration and never runs out of ports', async () => {
    const s = await churn(['--sysctl', 'tcp_tw_reuse=0', '--udp', '--count', '300']);
    expect(s.firstError).toBeNull();
    expect(s.succeeded).toBe(300);
    expect(s.localPortsUsed).toBeLessThanOrEqual(N_PORTS);
    expect(s.settings.udp).toBe(true);
    expect(s.server?.messages).toBe(300);
    // The raw engine has no UDP: Node's server answers.
    expect(s.settings.sandbox?.server).not.toContain('raw');
    expect(s.server?.settings.engine).toBe('node');
  });

  it('--bind-no-port defers the port to connect(): EADDRNOTAVAIL from connect, where plain --bind fails in bind()', async () => {
    const deferred = await churn([
      '--sysctl',
      'tcp_tw_reuse=0',
      '--bind',
      '127.0.0.1',
      '--bind-no-port',
      '--count',
      '300',
    ]);
    expect(deferred.settings.bindNoPort).toBe(true);
    expect(deferred.succeeded).toBe(N_PORTS);
    expect(deferred.firstError).toMatchObject({
      syscall: 'connect',
      errno: 'EADDRNOTAVAIL',
      atIteration: N_PORTS + 1,
    });

    const early = await churn(['--sysctl', 'tcp_tw_reuse=0', '--bind', '127.0.0.1', '--count', '300']);
    expect(early.succeeded).toBe(N_PORTS);
    expect(early.firstError).toMatchObject({
      syscall: 'bind',
      errno: 'EADDRINUSE',
      atIteration: N_PORTS + 1,
    });
  });

  it('--local-port-range narrows one socket to its own range', async () => {
    const s = await churn([
      '--sysctl',
      'tcp_tw_reuse=0',
      '--local-port-range',
      '50010-50019',
      '--no-stop-on-error',
      '--count',
      '30',
    ]);
    expect(s.succeeded).toBe(10);
    expect(s.localPortRangeSeen).toEqual({ low: 50010, high: 50019 });
    expect(s.errors).toEqual([{ errno: 'EADDRNOTAVAIL', code: 99, syscall: 'connect', count: 20 }]);
  });

  it('--close server-first leaves the client no TIME_WAIT to trip on', async () => {
    const s = await churn(['--sysctl', 'tcp_tw_reuse=0', '--close', 'server-first', '--count', '300']);
    expect(s.settings.sandbox?.server).toContain('server-first');
    expect(s.firstError).toBeNull();
    expect(s.succeeded).toBe(300);
  });
});

describeNs('twlab churn --sandbox with 2 hosts', () => {
  it('churns over the veth pair to the server host', async () => {
    const r = await runCli([
      'churn',
      '--sandbox',
      '--hosts',
      '2',
      '--to',
      '198.51.100.2:8080',
      '--count',
      '50',
      '--json',
    ]);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout) as SandboxChurnSummary;
    expect(s.succeeded).toBe(50);
    expect(s.settings.sandbox?.hosts).toBe(2);
  });
});

const BAD: [string, string[]][] = [
  ['port 0', ['--to', '127.0.0.1:0']],
  ['port 65536', ['--to', '127.0.0.1:65536']],
  ['--count 0', ['--to', '127.0.0.1:8080', '--count', '0']],
  ['--rate -1', ['--to', '127.0.0.1:8080', '--rate', '-1']],
  ['an unknown --close', ['--to', '127.0.0.1:8080', '--close', 'later']],
  ['a host that does not parse', ['--to', 'not-a-host:8080']],
  ['no port', ['--to', '127.0.0.1']],
  ['--concurrency 0', ['--to', '127.0.0.1:8080', '--concurrency', '0']],
  ['--linger -1', ['--to', '127.0.0.1:8080', '--linger', '-1']],
  ['--reuseaddr maybe', ['--to', '127.0.0.1:8080', '--reuseaddr', 'maybe']],
  ['--local-port-range 9-1', ['--to', '127.0.0.1:8080', '--local-port-range', '9-1']],
  ['--bind not-an-ip', ['--to', '127.0.0.1:8080', '--bind', 'not-an-ip']],
  ['--udp with --reuse-connection', ['--to', '127.0.0.1:8080', '--udp', '--reuse-connection']],
  ['sandbox flags without --sandbox', ['--to', '127.0.0.1:8080', '--hosts', '2']],
  ['--to not the 2-host server', ['--sandbox', '--hosts', '2', '--to', '127.0.0.1:8080']],
  ['two --to with --sandbox', ['--sandbox', '--to', '127.0.0.1:8080', '--to', '127.0.0.1:8081']],
  ['--to of two address families', ['--to', '127.0.0.1:8080', '--to', '[::1]:8080']],
];

for (const [name, args] of BAD) {
  it(`twlab churn rejects ${name}: one line, exit 2`, async () => {
    const r = await runCli(['churn', ...args, '--json']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^twlab: /);
  });
}

it('twlab churn --help shows examples and the exit codes', async () => {
  const r = await runCli(['churn', '--help']);
  expect(r.code).toBe(0);
  expect(r.stdout).toContain('Examples:');
  expect(r.stdout).toContain('Exit codes:');
});
