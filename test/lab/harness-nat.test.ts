/**
 * The lab harness's host model across the NAT sandbox: runSeedClient with 3 hosts measures the
 * client and server hosts as with 2, and the connections really cross the router.
 */
import { release } from 'node:os';
import { expect } from 'vitest';
import { runSeedClient } from '../../src/lab/harness.js';
import type { LabContext } from '../../src/lab/types.js';
import { createSandbox } from '../../src/sandbox/index.js';
import type { Sandbox } from '../../src/sandbox/index.js';
import { itNs } from '../helpers/sandbox.js';

itNs(
  'runSeedClient through the NAT: the seed fails on its own 100 ports, the router NATs each',
  async () => {
    const boxes: Sandbox[] = [];
    let routerCt: string;
    const ctx: LabContext = {
      kernel: release(),
      signal: new AbortController().signal,
      progress: () => undefined,
      sandbox: async (spec) => {
        const box = await createSandbox(spec);
        boxes.push(box);
        return box;
      },
    };
    try {
      const m = await runSeedClient(ctx, {
        hosts: 3,
        nat: { ports: { low: 41000, high: 41999 } },
        sysctls: { 'net.ipv4.tcp_tw_reuse': 0 },
        count: 150,
      });
      routerCt = (await boxes[0]!.router!.exec(['conntrack', '-L', '-p', 'tcp'])).stdout;
      expect(m).toMatchObject({
        hosts: 3,
        failedAfter: 100,
        firstError: 'connect EADDRNOTAVAIL',
        clientTimeWait: 100,
      });
    } finally {
      await Promise.all(boxes.map((b) => b.close()));
    }
    const natPorts = [...routerCt.matchAll(/dst=203\.0\.113\.1 sport=\d+ dport=(\d+)/g)].map((x) =>
      Number(x[1]),
    );
    expect(natPorts).toHaveLength(100);
    expect(natPorts.every((p) => p >= 41000 && p <= 41999)).toBe(true);
  },
  60_000,
);
