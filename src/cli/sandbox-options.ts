/**
 * The sandbox flags shared by every command that can run in a fresh namespace
 * (`twlab sandbox`, `twlab churn --sandbox`): --hosts, --port-range, --sysctl.
 */
import type { Command } from 'commander';
import { parseChoice, parsePortRange } from '../common/parse.js';
import type { PortRange } from '../common/parse.js';
import { parseSysctlAssignment } from '../sandbox/sysctl-names.js';
import type { SandboxSpec } from '../sandbox/types.js';
import { option, repeatable } from './command.js';

/** What commander hands over for the sandbox flags (already parsed and validated). */
export interface SandboxCliOptions {
  hosts?: 1 | 2;
  portRange?: PortRange;
  sysctl?: Array<[string, string]>;
}

function parseHosts(text: string): 1 | 2 {
  return Number(parseChoice(text.trim(), '--hosts', ['1', '2'] as const)) as 1 | 2;
}

/** Add --hosts, --port-range and --sysctl (repeatable) to a command. */
export function addSandboxOptions(cmd: Command): Command {
  return cmd
    .option(
      '--hosts <n>',
      'sandbox hosts: 1 (loopback only) or 2 (client 198.51.100.1 and server 198.51.100.2 joined by a veth pair)',
      option(parseHosts),
    )
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

/** The SandboxSpec the flags describe. */
export function sandboxSpecFromOptions(opts: SandboxCliOptions): SandboxSpec {
  const spec: SandboxSpec = { hosts: opts.hosts ?? 1 };
  if (opts.portRange) spec.portRange = opts.portRange;
  if (opts.sysctl && opts.sysctl.length > 0) spec.sysctls = Object.fromEntries(opts.sysctl);
  return spec;
}
