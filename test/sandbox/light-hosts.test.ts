/**
 * Light hosts (a sleep per namespace, for host-scale benches and tests): the sysctls are the
 * namespace's own, loopback works, and closing them leaves no process and no namespace.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readlinkSync } from 'node:fs';
import { expect } from 'vitest';
import { createLightHosts } from '../../src/sandbox/light-hosts.js';
import { itNs } from '../helpers/sandbox.js';

itNs('light hosts: own sysctls, loopback up, nothing left after close', async () => {
  const own = readlinkSync('/proc/self/ns/net');
  const lh = await createLightHosts(3, {
    portRange: { low: 40000, high: 40009 },
    sysctls: { tcp_tw_reuse: 0 },
  });
  const pids = lh.hosts.map((h) => h.pid);
  try {
    const inodes = new Set(pids.map((p) => readlinkSync(`/proc/${p}/ns/net`)));
    expect(inodes.size).toBe(3);
    expect(inodes.has(own)).toBe(false);
    for (const h of lh.hosts) {
      const argv = h.enter([
        'sh',
        '-c',
        'cat /proc/sys/net/ipv4/ip_local_port_range /proc/sys/net/ipv4/tcp_tw_reuse; ip -o link show lo',
      ]);
      const out = execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
      expect(out).toMatch(/^40000\s+40009\n0\n/);
      expect(out).toMatch(/<LOOPBACK,UP,LOWER_UP>/);
    }
    // The host's own settings are untouched.
    expect(execFileSync('cat', ['/proc/sys/net/ipv4/ip_local_port_range'], { encoding: 'utf8' })).not.toMatch(
      /^40000\s+40009/,
    );
  } finally {
    await lh.close();
  }
  for (const p of pids) expect(existsSync(`/proc/${p}`)).toBe(false);
});

itNs('light hosts: a bad sysctl name fails before any host starts', async () => {
  await expect(createLightHosts(2, { sysctls: { 'kernel.panic': 1 } })).rejects.toThrow(/kernel\.panic/);
});
