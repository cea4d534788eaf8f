/**
 * The sandbox flags shared by every command that can run in a fresh namespace
 * (`twlab sandbox`, `twlab churn --sandbox`): --hosts, --nat, --nat-fully-random, --port-range, --sysctl.
 */
import type { Command } from 'commander';
import { parseChoice, parsePortRange } from '../common/parse.js';
import type { PortRange } from '../common/parse.js';
import { parseSysctlAssignment } from '../sandbox/sysctl-names.js';
import { UsageError } from '../common/errors.js';
import { resolveTopology } from '../sandbox/topology.js';
import type { SandboxSpec } from '../sandbox/types.js';
import { option, repeatable } from './command.js';

/** What commander hands over for the sandbox flags (already parsed and validated). */
export interface SandboxCliOptions {
  hosts?: 1 | 2 | 3;
  nat?: PortRange;
  natFullyRandom?: boolean;
  portRange?: PortRange;
  sysctl?: Array<[string, string]>;
}

function parseHosts(text: string): 1 | 2 | 3 {
  return Number(parseChoice(text.trim(), '--hosts', ['1', '2', '3'] as const)) as 1 | 2 | 3;
}

/** Add --hosts, --port-range and --sysctl (repeatable) to a command. */
export function addSandboxOptions(cmd: Command): Command {
  return cmd
    .option(
      '--hosts <n>',
      'sandbox hosts: 1 (loopback only), 2 (client 198.51.100.1 and server 198.51.100.2 joined by a veth pair) ' +
        'or 3 (client 198.51.100.1 - router - server 203.0.113.2, with --nat)',
      option(parseHosts),
    )
    .option(
      '--nat <LOW-HIGH>',
      "3 hosts: the router source-NATs the client's TCP and UDP to 203.0.113.1 with ports LOW-HIGH (nftables)",
      option((t) => parsePortRange(t, '--nat')),
    )
    .option('--nat-fully-random', "the NAT picks a random port for every connection (nftables' fully-random)")
    .option(
      '--port-range <A-B>',
      'net.ipv4.ip_local_port_range in every sandbox host, e.g. 50000-50099',
      option((t) => parsePortRange(t, '--port-range')),
    )
    .option(
      '--sysctl <K=V>',
      'a per-namespace sysctl in every sandbox host, full (net.ipv4.tcp_tw_reuse=0) or short (tcp_tw_reuse=0) name; repeatable',
      repeatable(parseSysctlAssignment),
    );
}

/** The SandboxSpec the flags describe (--nat implies --hosts 3; the sandbox checks the rest). */
export function sandboxSpecFromOptions(opts: SandboxCliOptions): SandboxSpec {
  if (opts.natFullyRandom && !opts.nat) throw new UsageError('--nat-fully-random: needs --nat LOW-HIGH');
  const spec: SandboxSpec = { hosts: opts.hosts ?? (opts.nat ? 3 : 1) };
  if (opts.nat) spec.nat = { ports: opts.nat, ...(opts.natFullyRandom ? { fullyRandom: true } : {}) };
  resolveTopology(spec);
  if (opts.portRange) spec.portRange = opts.portRange;
  if (opts.sysctl && opts.sysctl.length > 0) spec.sysctls = Object.fromEntries(opts.sysctl);
  return spec;
}
