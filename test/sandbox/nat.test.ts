/**
 * The NAT sandbox: client 198.51.100.1 - router - server 203.0.113.2, the router source-NATing
 * the client with nftables in its own namespace. The kernel is the oracle: the server's own TCP
 * table (ss) names the peers it saw, the router's conntrack table (conntrack -L) the mappings,
 * and the host's ruleset is compared before and after.
 */
import { execFileSync, spawn } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { UsageError } from '../../src/common/errors.js';
import { twlabArgv } from '../../src/common/paths.js';
import { createSandbox } from '../../src/sandbox/index.js';
import type { Sandbox } from '../../src/sandbox/index.js';
import { CLI, runCli } from '../helpers/cli.js';
import { waitForConntrackEntries } from '../helpers/conntrack.js';
import {
  descendants,
  describeNs,
  ownNetns,
  procInfo,
  processesInNetnsSince,
  stillAlive,
  ticksNow,
  waitFor,
} from '../helpers/sandbox.js';

const PORTS = { low: 40000, high: 40099 };
const hostRuleset = (): string => execFileSync('nft', ['list', 'ruleset'], { encoding: 'utf8' });
const modes = process.getuid?.() === 0 ? (['root', 'userns'] as const) : (['userns'] as const);

/** ss -Htan in a host: [state, local, peer] per socket. */
async function tcpTable(box: Sandbox, role: 'client' | 'server'): Promise<string[][]> {
  const r = await box[role].exec(['ss', '-Htan']);
  expect(r.code).toBe(0);
  return r.stdout
    .trim()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.trim().split(/\s+/))
    .map((f) => [f[0]!, f[3]!, f[4]!]);
}

for (const mode of modes) {
  describeNs(`sandbox with a NAT router (${mode})`, () => {
    let box: Sandbox;
    let before: string;
    beforeAll(async () => {
      before = hostRuleset();
      box = await createSandbox({
        mode,
        nat: { ports: PORTS },
        sysctls: { 'net.netfilter.nf_conntrack_tcp_timeout_time_wait': 7 },
      });
    });
    afterAll(async () => box?.close());

    it('has client, router and server, each in its own namespace; the router forwards', async () => {
      expect(box.hosts.map((h) => [h.role, h.address])).toEqual([
        ['client', '198.51.100.1'],
        ['router', '203.0.113.1'],
        ['server', '203.0.113.2'],
      ]);
      expect(box.router).toBe(box.hosts[1]);
      expect(box.nat).toEqual({ ports: PORTS, fullyRandom: false, address: '203.0.113.1' });
      expect(new Set([...box.hosts.map((h) => procInfo(h.pid)!.netns), ownNetns]).size).toBe(4);
      expect(await box.router!.readSysctl('ip_forward')).toBe('1');
      expect(await box.client.readSysctl('ip_forward')).toBe('0');
      // The conntrack sysctl is per namespace: set in the router (and the others), not the host.
      expect(await box.router!.readSysctl('net.netfilter.nf_conntrack_tcp_timeout_time_wait')).toBe('7');
      expect(box.sysctls.find((s) => s.key.endsWith('time_wait'))?.hosts).toEqual([
        'client',
        'router',
        'server',
      ]);
    });

    it('the server has no route back to the client network; the ruleset is only in the router', async () => {
      const r = await box.server.exec(['ip', 'route', 'get', '198.51.100.1']);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/unreachable/i);
      const rules = await box.router!.exec(['nft', 'list', 'ruleset']);
      expect(rules.stdout).toContain('snat to 203.0.113.1:40000-40099');
      for (const h of [box.client, box.server])
        expect((await h.exec(['nft', 'list', 'ruleset'])).stdout).toBe('');
      expect(hostRuleset()).toBe(before);
    });

    it('twlab serve and twlab churn inside it: the server sees the NAT address, never the client', async () => {
      const serve = box.server.spawn(
        twlabArgv('serve', '--listen', '203.0.113.2:8080', '--close', 'server-first', '--duration', '60'),
      );
      try {
        await new Promise<void>((resolve) =>
          serve.stdout!.setEncoding('utf8').on('data', (d: string) => d.includes('listening') && resolve()),
        );
        const churn = await box.client.exec(
          twlabArgv(
            'churn',
            '--to',
            '203.0.113.2:8080',
            '--close',
            'server-first',
            '--count',
            '20',
            '--json',
          ),
        );
        expect(churn.code, churn.stderr).toBe(0);
        expect(JSON.parse(churn.stdout)).toMatchObject({ succeeded: 20, failed: 0 });
      } finally {
        serve.kill('SIGINT');
      }
      // The router's conntrack table first (its TIME_WAIT lasts 7 s here): an entry per connection.
      const ct = await box.router!.exec(['conntrack', '-L', '-p', 'tcp', '--dport', '8080']);
      const lines = ct.stdout.trim().split('\n');
      expect(lines).toHaveLength(20);
      // server-first: the server holds TIME-WAIT, one per connection, each with its peer. The
      // churn is done once its last FIN is sent: wait (10 s at most) for the server to have it.
      let server: string[][] = [];
      for (let i = 0; i < 100; i++) {
        server = (await tcpTable(box, 'server')).filter(
          ([state, local]) => local === '203.0.113.2:8080' && state !== 'LISTEN',
        );
        if (server.every(([state]) => state === 'TIME-WAIT') && server.length >= 20) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(server.map(([state]) => state)).toEqual(Array(20).fill('TIME-WAIT'));
      for (const [, local, peer] of server) {
        expect(local).toBe('203.0.113.2:8080');
        const [addr, port] = peer!.split(':');
        expect(addr).toBe('203.0.113.1');
        expect(Number(port)).toBeGreaterThanOrEqual(PORTS.low);
        expect(Number(port)).toBeLessThanOrEqual(PORTS.high);
      }
      // The router's conntrack table maps each client port to one of those peers.
      const peers = new Set(server.map(([, , peer]) => peer));
      for (const l of lines) {
        expect(l).toMatch(/src=198\.51\.100\.1 dst=203\.0\.113\.2 /);
        const m = /src=203\.0\.113\.2 dst=203\.0\.113\.1 sport=8080 dport=(\d+)/.exec(l);
        expect(peers.has(`203.0.113.1:${m![1]}`)).toBe(true);
      }
    });

    it('UDP is source-NATed too', async () => {
      const serve = box.server.spawn(
        twlabArgv('serve', '--udp', '--listen', '203.0.113.2:8081', '--duration', '60'),
      );
      try {
        await new Promise<void>((resolve) =>
          serve.stdout!.setEncoding('utf8').on('data', (d: string) => d.includes('listening') && resolve()),
        );
        const churn = await box.client.exec(
          twlabArgv('churn', '--udp', '--to', '203.0.113.2:8081', '--count', '5'),
        );
        expect(churn.code, churn.stderr).toBe(0);
      } finally {
        serve.kill('SIGINT');
      }
      // The churn is done once its datagrams are handed to its kernel: wait for the router's 5.
      await waitForConntrackEntries(box.router!, ['-p', 'udp', '--dport', '8081'], 5);
      const ct = await box.router!.exec(['conntrack', '-L', '-p', 'udp', '--dport', '8081']);
      const lines = ct.stdout.trim().split('\n');
      expect(lines).toHaveLength(5);
      for (const l of lines)
        expect(l).toMatch(/src=203\.0\.113\.2 dst=203\.0\.113\.1 sport=8081 dport=400\d\d/);
    });
  });
}

describeNs('NAT sandbox: bad input and missing tools, before anything starts', () => {
  it('refuses a NAT without 3 hosts, 3 hosts without a NAT, and a bad range (UsageError)', async () => {
    await expect(createSandbox({ hosts: 2, nat: { ports: PORTS } })).rejects.toThrow(UsageError);
    await expect(createSandbox({ hosts: 3 })).rejects.toThrow(/3 needs a NAT port range/);
    await expect(createSandbox({ nat: { ports: { low: 500, high: 20 } } })).rejects.toThrow(UsageError);
    await expect(createSandbox({ nat: { ports: { low: 0, high: 20 } } })).rejects.toThrow(UsageError);
  });

  it('refuses conntrack sysctls only the initial namespace may set, naming why', async () => {
    await expect(
      createSandbox({ nat: { ports: PORTS }, sysctls: { 'net.netfilter.nf_conntrack_max': 10 } }),
    ).rejects.toThrow(
      /nf_conntrack_max: not settable in a sandbox host \(the conntrack table limit is global/,
    );
    const r = await runCli([
      'sandbox',
      '--nat',
      '1-2',
      '--sysctl',
      'net.netfilter.nf_conntrack_buckets=10',
      '--',
      'true',
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  for (const [args, message] of [
    [['--nat', '5-3'], /--nat: '5-3' has A > B/],
    [['--nat', '0-10'], /--nat/],
    [['--hosts', '2', '--nat', '1-10'], /needs 3 hosts/],
    [['--hosts', '3'], /needs a NAT port range/],
    [['--nat-fully-random'], /--nat-fully-random: needs --nat/],
    [['--host', 'router'], /--host router: needs --nat/],
  ] as const) {
    it(`twlab sandbox ${args.join(' ')}: exit 2, one line`, async () => {
      const r = await runCli(['sandbox', ...args, '--', 'true']);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    });
  }

  it('without nft: one RunError line, exit 1', async () => {
    const r = await runCli(['sandbox', '--nat', '40000-40099', '--', 'true'], {
      env: { TWLAB_NFT: '/nonexistent/nft' },
    });
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(
      'twlab: sandbox --nat: needs nft (Debian package nftables), TWLAB_NFT=/nonexistent/nft is not executable',
    );
  });
});

describeNs('nothing of a NAT sandbox survives SIGKILL of its parent', () => {
  it('3 agents, their namespaces and CMD are gone; the host ruleset is untouched', async () => {
    const before = hostRuleset();
    const child = spawn(
      process.execPath,
      [CLI, 'sandbox', '--nat', '40000-40099', '--', 'sh', '-c', 'sleep 100 & echo ready; wait'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    const exit = new Promise((r) => child.on('exit', r));
    try {
      expect(await waitFor(() => out.includes('ready'), 30_000)).toBe(true);
      const hasSleep = (): boolean => descendants(child.pid!).some((p) => p.cmdline === 'sleep 100');
      expect(await waitFor(hasSleep, 10_000)).toBe(true);
      const procs = descendants(child.pid!);
      const agents = procs.filter(
        (p) => p.cmdline.includes('sandbox/agent.js') && p.cmdline.startsWith(process.execPath),
      );
      expect(agents).toHaveLength(3);
      const netns = new Set(agents.map((p) => p.netns));
      expect(netns.size).toBe(3);
      expect(netns.has(ownNetns)).toBe(false);
      const killedAt = ticksNow();
      child.kill('SIGKILL');
      await exit;
      const gone = await waitFor(
        () => stillAlive(procs).length === 0 && processesInNetnsSince(netns, killedAt).length === 0,
        10_000,
      );
      expect(gone).toBe(true);
      expect(hostRuleset()).toBe(before);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
