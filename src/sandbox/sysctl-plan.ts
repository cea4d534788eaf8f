/**
 * The sysctls a spec asks for, validated before anything starts, and the per-host results merged
 * into the outcomes a Sandbox reports.
 */
import { UsageError } from '../common/errors.js';
import type { SysctlResult, SysctlWrite } from './protocol.js';
import { show } from '../common/parse.js';
import { sysctlValue, writableSysctlName } from './sysctl-names.js';
import type { HostRole, SandboxSpec, SysctlOutcome } from './types.js';

export interface PlannedSysctls {
  common: SysctlWrite[];
  byRole: Record<HostRole, SysctlWrite[]>;
}

/** Validate the spec before anything is started; the order is the order outcomes are reported. */
export function planSysctls(spec: SandboxSpec): PlannedSysctls {
  const toWrites = (rec: Record<string, string | number> | undefined): SysctlWrite[] =>
    Object.entries(rec ?? {}).map(([k, v]) => {
      const key = writableSysctlName(k);
      return { key, value: sysctlValue(key, v) };
    });
  const common: SysctlWrite[] = [];
  const sysctls = toWrites(spec.sysctls);
  if (spec.portRange) {
    const { low, high } = spec.portRange;
    // ipv4_local_port_range() refuses (EINVAL) a range below ip_unprivileged_port_start (1024
    // unless set too, which must then be written first) or upside down, or beyond 65535.
    const unprivileged = sysctls.find((w) => w.key === 'net.ipv4.ip_unprivileged_port_start');
    const start = unprivileged && /^\d+$/.test(unprivileged.value) ? Number(unprivileged.value) : 1024;
    if (!Number.isInteger(low) || !Number.isInteger(high) || low < start || high < low || high > 65535) {
      throw new UsageError(
        `port range ${show(`${low}-${high}`)} is not accepted by the kernel (accepted: A-B, ${start} <= A <= B <= 65535; A may go lower with --sysctl ip_unprivileged_port_start=N)`,
      );
    }
    if (unprivileged) common.push(unprivileged);
    common.push({ key: 'net.ipv4.ip_local_port_range', value: `${low} ${high}` });
  }
  common.push(...sysctls.filter((w) => !common.includes(w)));
  return {
    common,
    byRole: {
      client: toWrites(spec.hostSysctls?.client),
      router: toWrites(spec.hostSysctls?.router),
      server: toWrites(spec.hostSysctls?.server),
    },
  };
}

/** One outcome per distinct result; the same result in both hosts is one outcome naming both. */
export function mergeOutcomes(perHost: Array<{ role: HostRole; results: SysctlResult[] }>): SysctlOutcome[] {
  const out: SysctlOutcome[] = [];
  const same = (a: SysctlOutcome, b: SysctlResult): boolean =>
    a.key === b.key &&
    a.requested === b.requested &&
    a.status === b.status &&
    a.value === b.value &&
    a.reason === b.reason;
  for (const { role, results } of perHost) {
    for (const r of results) {
      const existing = out.find((o) => same(o, r));
      if (existing) {
        if (!existing.hosts.includes(role)) existing.hosts.push(role);
      } else {
        out.push({ ...r, hosts: [role] });
      }
    }
  }
  return out;
}
