/**
 * `twlab sandbox -- CMD` as a user runs it: exit status, errors (one line, exit 2 for usage,
 * exit 1 when no namespace can be made), sysctl reports on stderr, env, and the unprivileged path.
 */
import { spawn, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { CLI, runCli } from '../helpers/cli.js';
import type { CliResult } from '../helpers/cli.js';
import { describeNs } from '../helpers/sandbox.js';

const isRoot = process.getuid?.() === 0;

/**
 * The unprivileged path needs the package readable by uid 65534 (not so for a checkout under a
 * private /root): then it is skipped, loudly, since that is the machine's layout, not a failure.
 */
function readableByNobody(): boolean {
  if (!isRoot) return false;
  const r = spawnSync('setpriv', [
    '--reuid=65534',
    '--regid=65534',
    '--clear-groups',
    '--',
    'test',
    '-r',
    CLI,
  ]);
  if (r.status === 0) return true;
  process.stderr.write(`\n!!!!! SKIPPING the uid 65534 test: ${CLI} is not readable by uid 65534 !!!!!\n\n`);
  return false;
}

/** Run a command line (no shell) and collect what it printed. */
function run(argv: string[], timeoutMs = 55_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** One line on stderr, nothing on stdout, no stack trace. */
function expectOneLineError(r: CliResult, code: number, pattern: RegExp): void {
  expect(r.code).toBe(code);
  expect(r.stdout).toBe('');
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^twlab: /);
  expect(lines[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

describe('twlab sandbox: usage errors (exit 2, one line, nothing started)', () => {
  it.each([
    [[], /missing CMD/],
    [['--'], /missing CMD/],
    [['--hosts', '4', '--', 'true'], /--hosts: '4' is not accepted \(accepted: 1, 2, 3\)/],
    [['--hosts', 'two', '--', 'true'], /--hosts: 'two' is not accepted/],
    [['--sysctl', 'tcp_tw_reuse', '--', 'true'], /--sysctl: 'tcp_tw_reuse' is not KEY=VALUE/],
    [['--sysctl', '=1', '--', 'true'], /--sysctl: '=1' is not KEY=VALUE/],
    [['--sysctl', 'kernel.pid_max=100', '--', 'true'], /'kernel.pid_max' is not a per-network-namespace key/],
    [['--sysctl', 'vm.swappiness=1', '--', 'true'], /'vm.swappiness' is not a per-network-namespace key/],
    [['--port-range', '5000', '--', 'true'], /--port-range: '5000' is not a port range/],
    [['--port-range', '6000-5000', '--', 'true'], /--port-range: '6000-5000' has A > B/],
    [['--port-range', '0-5000', '--', 'true'], /--port-range: 0 is out of range/],
    [
      ['--host', 'middle', '--', 'true'],
      /--host: 'middle' is not accepted \(accepted: client, router, server\)/,
    ],
    [['--bogus', '--', 'true'], /unknown option '--bogus'/],
  ])('%j', async (args, pattern) => {
    expectOneLineError(await runCli(['sandbox', ...args]), 2, pattern);
  });

  it('--help explains and gives examples, exit 0', async () => {
    const r = await runCli(['sandbox', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/--hosts <n>/);
    expect(r.stdout).toMatch(/--port-range <A-B>/);
    expect(r.stdout).toMatch(/--sysctl <K=V>/);
    expect(r.stdout).toMatch(/Examples:\n {2}twlab sandbox -- ip addr/);
  });
});

describeNs('twlab sandbox: running CMD', () => {
  it("exits with CMD's status; stdout is CMD's alone", async () => {
    const r = await runCli(['sandbox', '--', 'sh', '-c', 'echo hello; exit 3']);
    expect(r).toMatchObject({ code: 3, stdout: 'hello\n', stderr: '' });
  });

  it('a CMD killed by signal n gives 128+n', async () => {
    expect((await runCli(['sandbox', '--', 'sh', '-c', 'kill -TERM $$'])).code).toBe(143);
    expect((await runCli(['sandbox', '--', 'sh', '-c', 'kill -KILL $$'])).code).toBe(137);
  });

  it('a CMD that does not exist gives 127 and says so', async () => {
    const r = await runCli(['sandbox', '--', 'no-such-program-twlab']);
    expect(r.code).toBe(127);
    expect(r.stderr).toMatch(/no-such-program-twlab: No such file or directory/);
  });

  it('gets the terminal stdin of twlab', async () => {
    const r = await runCli(['sandbox', '--', 'sh', '-c', 'read x; echo "got $x"'], { input: 'abc\n' });
    expect(r).toMatchObject({ code: 0, stdout: 'got abc\n' });
  });

  it('1 host: loopback only, both addresses 127.0.0.1', async () => {
    const r = await runCli([
      'sandbox',
      '--',
      'sh',
      '-c',
      'echo "$TWLAB_CLIENT_ADDR $TWLAB_SERVER_ADDR"; ip -o link show | wc -l',
    ]);
    expect(r.stdout).toBe('127.0.0.1 127.0.0.1\n1\n');
  });

  it('2 hosts: CMD runs in the client by default, in the server with --host server', async () => {
    const script =
      'echo "$TWLAB_CLIENT_ADDR $TWLAB_SERVER_ADDR"; ip -o -4 addr show dev eth0 | cut -d" " -f7';
    const client = await runCli(['sandbox', '--hosts', '2', '--', 'sh', '-c', script]);
    expect(client).toMatchObject({ code: 0, stdout: '198.51.100.1 198.51.100.2\n198.51.100.1/24\n' });
    const server = await runCli(['sandbox', '--hosts', '2', '--host', 'server', '--', 'sh', '-c', script]);
    expect(server).toMatchObject({ code: 0, stdout: '198.51.100.1 198.51.100.2\n198.51.100.2/24\n' });
  });

  it('applies --port-range and --sysctl (full and short names) and reports what the kernel refused', async () => {
    const r = await runCli([
      'sandbox',
      '--port-range',
      '50000-50099',
      '--sysctl',
      'tcp_tw_reuse=0',
      '--sysctl',
      'net.ipv4.tcp_fin_timeout=7',
      '--sysctl',
      'tcp_tw_recycle=1',
      '--sysctl',
      'tcp_tw_reuse_delay=0',
      '--',
      'sh',
      '-c',
      'cd /proc/sys/net/ipv4; cat ip_local_port_range tcp_tw_reuse tcp_fin_timeout',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('50000\t50099\n0\n7\n');
    expect(r.stderr.trimEnd().split('\n')).toEqual([
      'twlab: sysctl net.ipv4.tcp_tw_recycle: not present on this kernel',
      'twlab: sysctl net.ipv4.tcp_tw_reuse_delay=0: rejected by the kernel (EINVAL)',
    ]);
  });

  it.runIf(readableByNobody())(
    'works unprivileged (uid 65534) through a user namespace, with 2 hosts',
    async () => {
      const r = await run([
        'setpriv',
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        '--',
        process.execPath,
        CLI,
        'sandbox',
        '--hosts',
        '2',
        '--sysctl',
        'tcp_tw_reuse=0',
        '--',
        'sh',
        '-c',
        'cat /proc/sys/net/ipv4/tcp_tw_reuse; ip -o -4 addr show dev eth0 | cut -d" " -f7; cat /proc/self/uid_map',
      ]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const [reuse, addr, uidMap] = r.stdout.trim().split('\n');
      expect(reuse).toBe('0');
      expect(addr).toBe('198.51.100.1/24');
      expect(uidMap!.trim().split(/\s+/)).toEqual(['0', '65534', '1']);
    },
  );

  it.runIf(isRoot)(
    'where neither root nor user namespaces work: one line naming what is needed, exit 1',
    async () => {
      // A throw-away user namespace that allows no further user namespaces, entered without
      // capabilities: neither way can work there. (user.max_user_namespaces is per user namespace.)
      const r = await run([
        'unshare',
        '--user',
        '--map-root-user',
        '--',
        'sh',
        '-c',
        `echo 0 > /proc/sys/user/max_user_namespaces && exec setpriv --bounding-set -all --inh-caps -all -- "${process.execPath}" "${CLI}" sandbox -- true`,
      ]);
      expectOneLineError(
        r,
        1,
        /cannot create a network namespace .*needs root \(CAP_SYS_ADMIN\) or unprivileged user namespaces/,
      );
    },
  );
});
