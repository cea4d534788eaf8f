/**
 * `doctor --all-namespaces`: today's findings for every network namespace on the host, read from
 * inside each (its own census, sysctls and counters), worst first, each naming who owns the
 * namespace. Only reads: a trial bind (`--try-bind`) is refused in another namespace.
 */
import { runDoctor, type DoctorOptions, type DoctorResult, type Finding } from './doctor.js';
import { byRisk, describeNetns, type NetnsIdentity } from './census-all.js';
import type { NetnsInfo } from './namespaces.js';
import { readNetns, type SkippedNetns } from './netns-read.js';

export interface NetnsDoctor extends DoctorResult, NetnsIdentity {}

export interface HostDoctor {
  namespaces: NetnsDoctor[];
  host: { seen: number; read: number; skipped: SkippedNetns[]; withFindings: number };
}

type Options = Omit<DoctorOptions, 'tryBind'>;

const SEVERITY: Record<Finding['severity'], number> = { critical: 3, warning: 2, info: 1 };

function severityOf(d: DoctorResult): number {
  return Math.max(0, ...d.findings.map((f) => SEVERITY[f.severity]));
}

/** The doctor of one namespace, or why it could not be read. */
export function doctorOfNetns(ns: NetnsInfo, opts: Options = {}): NetnsDoctor | SkippedNetns {
  const r = readNetns(ns, () => runDoctor(opts));
  return r.ok ? { ...describeNetns(ns), ...r.value } : r.skipped;
}

/** Every namespace's findings, the most severe and soonest exhausted first. */
export function runHostDoctor(namespaces: readonly NetnsInfo[], opts: Options = {}): HostDoctor {
  const read: NetnsDoctor[] = [];
  const skipped: SkippedNetns[] = [];
  for (const ns of namespaces) {
    const r = doctorOfNetns(ns, opts);
    if ('reason' in r) skipped.push(r);
    else read.push(r);
  }
  read.sort((a, b) => severityOf(b) - severityOf(a) || byRisk(a.census, b.census));
  return {
    namespaces: read,
    host: {
      seen: namespaces.length,
      read: read.length,
      skipped,
      withFindings: read.filter((d) => d.findings.length > 0).length,
    },
  };
}
