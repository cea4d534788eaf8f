/**
 * The sandbox's networks: which hosts there are, their addresses, links and routes, and (with 3
 * hosts) the router's source-NAT ruleset. Pure: sandbox.ts applies it through the agents.
 */
import { UsageError } from '../common/errors.js';
import type { PortRange } from '../common/parse.js';
import type { HostRole, NatSpec, SandboxSpec } from './types.js';

/** The 2-host network: a /24 that is never routed to the host. */
export const SANDBOX_NET = { client: '198.51.100.1', server: '198.51.100.2', prefix: 24, ifname: 'eth0' };

/**
 * The 3-host network: client 198.51.100.1 - router (198.51.100.254 | 203.0.113.1) - server
 * 203.0.113.2. The server has no route to 198.51.100.0/24, so its replies reach the client only
 * through the router's NAT. 203.0.113.0/24 is, like 198.51.100.0/24, a documentation network.
 */
export const NAT_NET = {
  client: '198.51.100.1',
  gateway: '198.51.100.254',
  natAddress: '203.0.113.1',
  server: '203.0.113.2',
  clientNet: '198.51.100.0/24',
  serverNet: '203.0.113.0/24',
  prefix: 24,
  /** The router's link to the server (its link to the client is eth0, as on every host). */
  outside: 'eth1',
};

export type HostCount = 1 | 2 | 3;

export interface HostPlan {
  role: HostRole;
  /** The address other hosts reach it at (the router: its NAT address). */
  address: string;
  /** `ip -batch` lines run in the host at setup. */
  ip: string[];
  /** Interfaces to wait for until operationally UP. */
  links: string[];
}

/** A veth pair made from inside host `from` (named `ifname` there), its peer put into host `to`. */
export interface VethPlan {
  from: number;
  ifname: string;
  to: number;
  peer: string;
}

/**
 * The host count and NAT a spec asks for, checked before anything starts: `nat` needs 3 hosts
 * (and implies them), 3 hosts need `nat`, the NAT's ports are a valid range.
 */
export function resolveTopology(spec: SandboxSpec): { hosts: HostCount; nat?: NatSpec } {
  const hosts = spec.hosts ?? (spec.nat ? 3 : 1);
  if (hosts !== 1 && hosts !== 2 && hosts !== 3) {
    throw new UsageError(`sandbox hosts: ${String(hosts)} is not accepted (accepted: 1, 2, 3 with a NAT)`);
  }
  if (hosts !== 3) {
    if (spec.nat) throw new UsageError(`sandbox nat: needs 3 hosts (client - router - server), not ${hosts}`);
    return { hosts };
  }
  if (!spec.nat) throw new UsageError('sandbox hosts: 3 needs a NAT port range (--nat LOW-HIGH)');
  checkRange(spec.nat.ports);
  return { hosts, nat: spec.nat };
}

function checkRange(r: PortRange): void {
  const ok = (n: number): boolean => Number.isInteger(n) && n >= 1 && n <= 65535;
  if (!r || !ok(r.low) || !ok(r.high) || r.low > r.high) {
    throw new UsageError(
      `sandbox nat: ports ${r ? `${String(r.low)}-${String(r.high)}` : String(r)} are not a range ` +
        '(accepted: LOW-HIGH, 1 <= LOW <= HIGH <= 65535)',
    );
  }
}

/** Every host's addresses and routes, and the veth pairs between them. */
export function layout(hosts: HostCount): { hosts: HostPlan[]; veths: VethPlan[] } {
  const eth0 = SANDBOX_NET.ifname;
  const up = (ifname: string, address: string): string[] => [
    `addr add ${address}/${SANDBOX_NET.prefix} dev ${ifname}`,
    `link set ${ifname} up`,
  ];
  if (hosts === 1)
    return {
      hosts: [{ role: 'client', address: '127.0.0.1', ip: ['link set lo up'], links: [] }],
      veths: [],
    };
  if (hosts === 2) {
    const host = (role: 'client' | 'server'): HostPlan => ({
      role,
      address: SANDBOX_NET[role],
      ip: ['link set lo up', ...up(eth0, SANDBOX_NET[role])],
      links: [eth0],
    });
    return { hosts: [host('client'), host('server')], veths: [{ from: 0, ifname: eth0, to: 1, peer: eth0 }] };
  }
  const n = NAT_NET;
  return {
    hosts: [
      {
        role: 'client',
        address: n.client,
        ip: ['link set lo up', ...up(eth0, n.client), `route add ${n.serverNet} via ${n.gateway}`],
        links: [eth0],
      },
      {
        role: 'router',
        address: n.natAddress,
        ip: ['link set lo up', ...up(eth0, n.gateway), ...up(n.outside, n.natAddress)],
        links: [eth0, n.outside],
      },
      // No route to the client's network: replies go to the NAT address, on-link.
      { role: 'server', address: n.server, ip: ['link set lo up', ...up(eth0, n.server)], links: [eth0] },
    ],
    veths: [
      { from: 0, ifname: eth0, to: 1, peer: eth0 },
      { from: 2, ifname: eth0, to: 1, peer: n.outside },
    ],
  };
}

/**
 * The router's nftables ruleset: TCP and UDP from the client's network leaving towards the server
 * get the NAT address as source and a port from `nat.ports` (fully-random: NF_NAT_RANGE_PROTO_
 * RANDOM_FULLY, a random port for every connection rather than the source port when it is free).
 */
export function natRuleset(nat: NatSpec): string {
  const n = NAT_NET;
  const to = `${n.natAddress}:${nat.ports.low}-${nat.ports.high}${nat.fullyRandom ? ' fully-random' : ''}`;
  return [
    'table ip twlab {',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    `    oifname "${n.outside}" ip saddr ${n.clientNet} meta l4proto { tcp, udp } snat to ${to}`,
    '  }',
    '}',
    '',
  ].join('\n');
}
