/**
 * Two sandbox hosts joined by a veth pair: real TCP between 198.51.100.1 and 198.51.100.2 (not
 * loopback), per-role sysctls, and the link taken down and up.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { UsageError } from '../../src/common/errors.js';
import { createSandbox } from '../../src/sandbox/index.js';
import type { Sandbox } from '../../src/sandbox/index.js';
import type * as Probe from '../../src/sandbox/probe.js';
import { remote, remoteModule } from '../../src/sandbox/remote.js';
import { describeNs, ownNetns, procInfo, waitFor } from '../helpers/sandbox.js';

const PROBE = remoteModule<typeof Probe>('sandbox/probe.js');
const modes = process.getuid?.() === 0 ? (['root', 'userns'] as const) : (['userns'] as const);

for (const mode of modes) {
  describeNs(`sandbox with 2 hosts (${mode})`, () => {
    let box: Sandbox;
    beforeAll(async () => {
      box = await createSandbox({
        hosts: 2,
        mode,
        portRange: { low: 50000, high: 50099 },
        sysctls: { tcp_fin_timeout: 9 },
        hostSysctls: { client: { tcp_tw_reuse: 0 }, server: { tcp_tw_reuse: 1 } },
      });
    });
    afterAll(async () => box?.close());

    it('has a client and a server host, each with its own network namespace', () => {
      expect(box.hosts.map((h) => [h.role, h.address])).toEqual([
        ['client', '198.51.100.1'],
        ['server', '198.51.100.2'],
      ]);
      expect(box.client).toBe(box.hosts[0]);
      expect(box.server).toBe(box.hosts[1]);
      const a = procInfo(box.client.pid)!.netns;
      const b = procInfo(box.server.pid)!.netns;
      expect(new Set([a, b, ownNetns]).size).toBe(3);
    });

    it('each host has lo and its end of the veth pair, with its address', async () => {
      for (const h of box.hosts) {
        const r = await h.exec(['ip', '-o', '-4', 'addr', 'show']);
        const lines = r.stdout.trim().split('\n');
        expect(lines).toHaveLength(2);
        expect(lines[0]).toMatch(/^1: lo +inet 127\.0\.0\.1\/8/);
        expect(lines[1]).toMatch(new RegExp(`^\\d+: eth0 +inet ${h.address.replace(/\./g, '\\.')}/24`));
        const link = await h.exec(['ip', '-o', 'link', 'show', 'eth0']);
        expect(link.stdout).toMatch(/state UP/);
        expect(link.stdout).toMatch(/link\/ether/);
      }
    });

    it('applies common and per-role sysctls, each in its own host', async () => {
      expect(await box.client.readSysctl('tcp_tw_reuse')).toBe('0');
      expect(await box.server.readSysctl('tcp_tw_reuse')).toBe('1');
      for (const h of box.hosts) {
        expect(await h.readSysctl('tcp_fin_timeout')).toBe('9');
        expect(await h.readSysctl('ip_local_port_range')).toBe('50000 50099');
      }
      expect(box.sysctls).toEqual([
        {
          key: 'net.ipv4.ip_local_port_range',
          requested: '50000 50099',
          status: 'applied',
          value: '50000 50099',
          hosts: ['client', 'server'],
        },
        {
          key: 'net.ipv4.tcp_fin_timeout',
          requested: '9',
          status: 'applied',
          value: '9',
          hosts: ['client', 'server'],
        },
        { key: 'net.ipv4.tcp_tw_reuse', requested: '0', status: 'applied', value: '0', hosts: ['client'] },
        { key: 'net.ipv4.tcp_tw_reuse', requested: '1', status: 'applied', value: '1', hosts: ['server'] },
      ]);
    });

    it('TCP from the client reaches the server over the veth, from 198.51.100.1', async () => {
      const events: unknown[] = [];
      const accepted = remote(box.server, PROBE, (e) => events.push(e)).acceptOne(
        '198.51.100.2',
        8080,
        10_000,
      );
      // Wait for the listener before connecting: as long as acceptOne itself waits (a loaded
      // machine can take seconds to start the agent's call), not a fixed 2 s.
      await waitFor(() => events.length > 0, 10_000, 10);
      expect(events).toEqual([{ listening: 8080 }]);
      const connected = await remote(box.client, PROBE).connectOnce('198.51.100.2', 8080, 5000);
      const peer = await accepted;
      expect(connected.localAddress).toBe('198.51.100.1');
      expect(connected.localPort).toBeGreaterThanOrEqual(50000);
      expect(connected.localPort).toBeLessThanOrEqual(50099);
      expect(peer).toEqual({
        remoteAddress: '198.51.100.1',
        remotePort: connected.localPort,
        localAddress: '198.51.100.2',
      });
    });

    it('the server address is not reachable from the host itself', async () => {
      const r = await box.client.exec(['ip', 'route', 'get', '198.51.100.2']);
      expect(r.stdout).toMatch(/dev eth0/);
      // The host itself has no address of the sandbox network.
      const { execFileSync } = await import('node:child_process');
      const hostAddrs = execFileSync('ip', ['-o', 'addr', 'show'], { encoding: 'utf8' });
      expect(hostAddrs).not.toMatch(/198\.51\.100\./);
    });

    it('setLink(false) blocks traffic; setLink(true) restores it', async () => {
      await box.setLink(false);
      try {
        const down = await remote(box.client, PROBE)
          .connectOnce('198.51.100.2', 8081, 1500)
          .catch((e: unknown) => e);
        expect(down).toMatchObject({ code: expect.stringMatching(/^(ENETUNREACH|EHOSTUNREACH|ETIMEDOUT)$/) });
        const link = await box.server.exec(['ip', '-o', 'link', 'show', 'eth0']);
        expect(link.stdout).not.toMatch(/state UP/);
      } finally {
        await box.setLink(true);
      }
      // Up again: a closed port answers with RST at once (ECONNREFUSED), proving the path works.
      const up = await remote(box.client, PROBE)
        .connectOnce('198.51.100.2', 8081, 3000)
        .catch((e: unknown) => e);
      expect(up).toMatchObject({ code: 'ECONNREFUSED' });
    });
  });
}

describeNs('setLink with 1 host', () => {
  it('is a UsageError', async () => {
    const box = await createSandbox({ hosts: 1 });
    try {
      await expect(box.setLink(false)).rejects.toBeInstanceOf(UsageError);
    } finally {
      await box.close();
    }
  });
});
