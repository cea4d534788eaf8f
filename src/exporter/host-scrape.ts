/**
 * One scrape of many network namespaces (`twlab exporter --all-namespaces`, `--netns`): each read
 * from inside on the calling thread (observe/netns-read.ts: setns, read, come back), synchronously
 * in the scrape's own turn of the event loop, so no other code runs while the thread is elsewhere.
 * The census (whose pass also fills the TIME_WAIT histogram) and the sysctls of a namespace are
 * read in that one visit.
 *
 * Cardinality: namespaces are ranked most at risk first (census-all's byRisk: soonest exhaustion,
 * largest share of the range held, most TIME-WAIT); the top `max` are exported with their labels
 * and the rest are folded into one netns="other" sample.
 */
import { readFileSync } from 'node:fs';
import { takeCensus, TimeLeft, type CensusResult } from '../observe/census.js';
import { byRisk } from '../observe/census-all.js';
import { DOCTOR_SYSCTLS } from '../observe/doctor.js';
import { discoverNetns, type NetnsInfo } from '../observe/namespaces.js';
import { discoveryNotes, orFail, readNetns, resolveNetns, type SkippedNetns } from '../observe/netns-read.js';
import { readSysctls } from '../observe/sysctl.js';
import { foldNamespaces, sampleOf, type Labels, type NamespaceSample } from './sample.js';
import { histogramOf } from './time-wait-histogram.js';

export const DEFAULT_MAX_NAMESPACES = 20;

/** The labels of a namespace's series; only those known are set (netnsLabels). */
export const NETNS_LABELS = [
  'netns',
  'owner_kind',
  'runtime',
  'container_id',
  'container_name',
  'pod_uid',
  'pod_name',
  'pod_namespace',
  'service',
] as const;

export interface HostScrapeOptions {
  /** Namespaces exported with their own labels; the rest are folded into netns="other". */
  max: number;
  /** One namespace (--netns) instead of discovering every one at each scrape. */
  only?: NetnsInfo;
  source?: 'auto' | 'netlink' | 'procfs';
  rateWindowSec?: number;
}

export interface HostScrape {
  /** The top `max` namespaces, most at risk first, then `other` when any were folded. */
  samples: NamespaceSample[];
  /** Namespaces found (1 with `only`). */
  seen: number;
  skipped: SkippedNetns[];
  /** How many namespaces the netns="other" sample folds. */
  folded: number;
  /** Processes whose namespace discovery could not open (EACCES/EPERM). */
  unreadablePids: number;
  /** What discovery could not see (discoveryNotes). */
  notes: string[];
}

/**
 * netns (the inode), owner_kind (container, pod, service, lxc; "host" for the host's initial
 * namespace), runtime, container_id/_name, pod_uid/_name/_namespace, service (a systemd unit).
 * Every one is a function of the namespace, so they add no series.
 */
export function netnsLabels(ns: NetnsInfo): Labels {
  const o = ns.owner;
  const set = (name: (typeof NETNS_LABELS)[number], value: string | null | undefined): Labels =>
    value ? { [name]: value } : {};
  const container = o?.kind === 'container' || o?.kind === 'lxc';
  return {
    netns: String(ns.inode),
    ...set('owner_kind', ns.host ? 'host' : o?.kind),
    ...set('runtime', o?.runtime),
    ...set('container_id', container ? o.id : null),
    ...set('container_name', container ? o.name : null),
    ...set('pod_uid', o?.pod?.uid),
    ...set('pod_name', o?.pod?.name),
    ...set('pod_namespace', o?.pod?.namespace),
    ...set('service', o?.kind === 'service' ? o.id : null),
  };
}

/** Read every namespace (or `only`), rank them and fold all but the top `max`. */
export function scrapeHost(opts: HostScrapeOptions): HostScrape {
  const found = opts.only ? undefined : discoverNetns();
  const list = opts.only ? [opts.only] : found!.namespaces;
  const censusOptions = {
    top: Number.MAX_SAFE_INTEGER,
    ...(opts.source ? { source: opts.source } : {}),
    ...(opts.rateWindowSec ? { rateWindowSec: opts.rateWindowSec } : {}),
  };
  const read: { inode: number; census: CensusResult; sample: NamespaceSample }[] = [];
  const skipped: SkippedNetns[] = [];
  for (const ns of list) {
    const timeLeft = new TimeLeft();
    const r = readNetns(ns, () => ({
      census: takeCensus({ ...censusOptions, timeLeft }),
      sysctls: readSysctls(DOCTOR_SYSCTLS),
    }));
    if (!r.ok) {
      skipped.push(r.skipped);
      continue;
    }
    const { census, sysctls } = r.value;
    const sample = sampleOf(census, histogramOf(timeLeft), sysctls, netnsLabels(ns));
    read.push({ inode: ns.inode, census, sample });
  }
  read.sort((a, b) => byRisk(a.census, b.census) || a.inode - b.inode);
  const top = read.slice(0, opts.max).map((r) => r.sample);
  const rest = read.slice(opts.max).map((r) => r.sample);
  return {
    samples: rest.length > 0 ? [...top, foldNamespaces(rest)] : top,
    seen: list.length,
    skipped,
    folded: rest.length,
    unreadablePids: found?.unreadablePids ?? 0,
    notes: found ? discoveryNotes(found) : [],
  };
}

/** `--netns PID|PATH` as the namespace to export, checked readable now (else the one-line error). */
export function resolveExportedNetns(spec: string): NetnsInfo {
  const ns = resolveNetns(spec, discoverNetns().namespaces);
  const r = readNetns(ns, () => true);
  orFail(spec, r.ok ? r : r.skipped);
  return ns;
}

/** What a first scrape could not read, as lines for stderr at start-up (empty: it read everything). */
export function startupNotes(first: HostScrape): string[] {
  const notes = [...first.notes];
  // discoveryNotes says nothing to root; root in a container without CAP_SYS_PTRACE is the case.
  if (first.unreadablePids > 0 && process.getuid?.() === 0 && !hasCapability(CAP_SYS_PTRACE))
    notes.push(
      `${first.unreadablePids} processes' namespaces could not be opened: without CAP_SYS_PTRACE, those of processes with more capabilities are not found (grant it: deploy/kubernetes/daemonset.yaml)`,
    );
  const by = new Map<string, number>();
  for (const s of first.skipped) by.set(s.reason, (by.get(s.reason) ?? 0) + 1);
  if (by.size > 0) {
    const counts = [...by].map(([reason, n]) => `${reason}: ${n}`).join(', ');
    const hint = by.has('denied')
      ? '; run as root (CAP_SYS_ADMIN, and CAP_SYS_PTRACE in a container) to read them'
      : '';
    notes.push(
      `${first.skipped.length} of ${first.seen} network namespaces could not be read (${counts}); they are counted in twlab_netns_skipped${hint}`,
    );
  }
  return notes;
}

/** include/uapi/linux/capability.h */
const CAP_SYS_PTRACE = 19;

/** Whether this process has `cap` in its effective set (/proc/self/status CapEff). */
function hasCapability(cap: number): boolean {
  const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
  return hex !== undefined && ((BigInt(`0x${hex}`) >> BigInt(cap)) & 1n) === 1n;
}
