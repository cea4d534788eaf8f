/**
 * S0-02: "for Linux 32768 to 61000". A fresh network namespace gets the kernel's built-in
 * ip_local_port_range (it is per namespace and not inherited), so reading it there reads the
 * running kernel's default.
 */
import { readSysctl } from '../../observe/sysctl.js';
import type { Claim, Judgement } from '../types.js';
import { SEED0 } from './s0-common.js';

export interface S0_02Measured {
  claimedRange: string;
  freshNamespaceRange: string;
  freshNamespacePorts: number;
  claimedPorts: number;
  /** This machine's own setting, read (never written) for comparison. */
  thisHostRange: string | null;
}

const CLAIMED = '32768 61000';

function portsOf(range: string): number {
  const [low, high] = range.split(/\s+/).map(Number);
  return (high ?? 0) - (low ?? 0) + 1;
}

function judgeS0_02(m: S0_02Measured): Judgement {
  if (m.freshNamespaceRange === m.claimedRange) {
    return {
      verdict: 'confirmed',
      explanation: `A fresh namespace on this kernel starts with ip_local_port_range ${m.freshNamespaceRange}, as claimed (${m.freshNamespacePorts} ports).`,
    };
  }
  return {
    verdict: 'refuted',
    explanation: `This kernel's default is ${m.freshNamespaceRange} (${m.freshNamespacePorts} ports), not ${m.claimedRange} (${m.claimedPorts}): ${m.claimedPorts - m.freshNamespacePorts} port(s) apart. The seed's client died after "roughly 25.000" connections, the same order as either count.`,
  };
}

export const claim: Claim<S0_02Measured> = {
  id: 'S0-02',
  claim: "Linux's ephemeral port range is 32768 to 61000.",
  source: {
    seed: SEED0,
    where: 'comment 1 (Kristof Provost)',
    quote:
      'Source ports are generally chosen from the ephemeral port range (for Linux 32768 to 61000 according to Wikipedia)',
  },
  estimateMs: 1_000,
  async run(ctx) {
    const sb = await ctx.sandbox({ hosts: 1 });
    const fresh = await sb.client.readSysctl('net.ipv4.ip_local_port_range');
    if (fresh === undefined) throw new Error('net.ipv4.ip_local_port_range is missing in the sandbox');
    const thisHost = readSysctl('net.ipv4.ip_local_port_range') ?? null;
    return {
      claimedRange: CLAIMED,
      freshNamespaceRange: fresh,
      freshNamespacePorts: portsOf(fresh),
      claimedPorts: portsOf(CLAIMED),
      thisHostRange: thisHost,
    };
  },
  judge: judgeS0_02,
};
