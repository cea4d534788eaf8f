/**
 * The dashboard's host view: every network namespace on the host, most at risk first
 * (GET /api/host), and the per-namespace panels for any one of them (GET /api/census and
 * /api/doctor with `?netns=INODE`).
 *
 * The browser never names a path: `netns` is an inode, and only one that discovery lists is read
 * (through the paths discovery found for it; readNetns checks it lands in that inode). Reads are
 * synchronous on the server thread (setns on that thread, see sockets/netns.ts), so the work per
 * request is bounded: discovery lists at most MAX_NAMESPACES namespaces, a host view starts no
 * namespace after HOST_BUDGET_MS (those left are shown as an earlier view read them, and read
 * first next time), and is reused by every request within HOST_TTL_MS.
 */
import { discoverNetns, type NetnsDiscovery, type NetnsInfo } from '../observe/namespaces.js';
import {
  byRisk,
  censusOfNetns,
  takeHostCensus,
  type HostCensus,
  type NetnsCensus,
} from '../observe/census-all.js';
import { doctorOfNetns, type NetnsDoctor } from '../observe/doctor-all.js';
import { runDoctor } from '../observe/doctor.js';
import { discoveryNotes, type SkippedNetns } from '../observe/netns-read.js';
import { ownerLabel } from '../observe/owner-label.js';
import { dashboardCensus, type DashboardCensus } from './api.js';
import { RunError, UsageError } from '../common/errors.js';

/** At most this many namespaces are listed and read per host view (the rest are counted). */
export const MAX_NAMESPACES = 1024;
const HOST_BUDGET_MS = 1_000;
const HOST_TTL_MS = 2_000;
const DISCOVERY_TTL_MS = 5_000;
/** The census's own default (census -A shows the same worst destination). */
const TOP = 20;

/**
 * One row of the host view: census -A's, with its owner as the table names it and when it was
 * read; `pressure` holds only the worst entry.
 */
export type HostRow = NetnsCensus & { label: string; readAt: string };

export interface HostView extends HostCensus {
  /**
   * Every namespace discovery lists: those read for this view, and those the budget left unread
   * with their row from an earlier view (older `readAt`). `host.totals` counts this view's reads.
   */
  namespaces: HostRow[];
  /** What discovery could not see or list (omitted past MAX_NAMESPACES, unreadable pids). */
  notes: string[];
  /** Milliseconds spent discovering and reading, for this answer. */
  timing: { discoverMs: number; readMs: number; at: string };
}

/** A namespace that could not be read: the HTTP status that says so. */
export class NetnsUnavailable extends RunError {
  constructor(readonly skipped: SkippedNetns) {
    super(`network namespace ${skipped.inode}: ${skipped.reason}: ${skipped.message}`);
  }
}

/** `?netns=` as an inode: digits only (never a path). undefined: the dashboard's own namespace. */
export function parseNetnsParam(value: string | null): number | undefined {
  if (value === null || value === '') return undefined;
  if (!/^[1-9]\d{0,15}$/.test(value))
    throw new UsageError(
      `netns: '${value.slice(0, 40)}' is not accepted (accepted: an inode from /api/host)`,
    );
  return Number(value);
}

export class HostApi {
  private discovery: { at: number; found: NetnsDiscovery; ms: number } | undefined;
  private host: { at: number; view: HostView } | undefined;

  private readonly budgetMs: number;
  private readonly now: () => number;
  private readonly discoverAll: () => NetnsDiscovery;

  /** The options are for tests: a budget that forces rotation, a clock, a given set of namespaces. */
  constructor(opts: { budgetMs?: number; now?: () => number; discover?: () => NetnsDiscovery } = {}) {
    this.budgetMs = opts.budgetMs ?? HOST_BUDGET_MS;
    this.now = opts.now ?? Date.now;
    this.discoverAll = opts.discover ?? (() => discoverNetns({ maxNamespaces: MAX_NAMESPACES }));
  }

  private discover(fresh = false): { found: NetnsDiscovery; ms: number } {
    const t = this.now();
    if (fresh || !this.discovery || t - this.discovery.at > DISCOVERY_TTL_MS) {
      const t0 = performance.now();
      const found = this.discoverAll();
      this.discovery = { at: t, found, ms: performance.now() - t0 };
    }
    return this.discovery;
  }

  /** Every namespace's census, most at risk first (shared by requests within HOST_TTL_MS). */
  hostView(): HostView {
    const t = this.now();
    if (this.host && t - this.host.at <= HOST_TTL_MS) return this.host.view;
    const { found, ms } = this.discover(true);
    // The least recently read first (never read: first of all), so that a budget that cannot
    // cover every namespace in one view still reads each one within a few views.
    const last = new Map(this.host?.view.namespaces.map((n) => [n.netns.inode, n]));
    const readAt = (inode: number): string => last.get(inode)?.readAt ?? '';
    const order = [...found.namespaces].sort((a, b) => readAt(a.inode).localeCompare(readAt(b.inode)));
    const t0 = performance.now();
    const census = takeHostCensus(order, { top: TOP, budgetMs: this.budgetMs });
    const readMs = performance.now() - t0;
    const over = census.host.overBudget ?? 0;
    const at = new Date(t).toISOString();
    const carried = order.slice(order.length - over).flatMap((ns) => last.get(ns.inode) ?? []);
    // The table needs each namespace's worst destination only (its panels read them all): the
    // answer stays small with hundreds of namespaces.
    const fresh = census.namespaces.map((n) => ({
      ...n,
      pressure: n.worst ? [n.worst] : [],
      label: ownerLabel(n),
      readAt: at,
    }));
    const rows = [...fresh, ...carried];
    const view: HostView = {
      ...census,
      namespaces: rows.sort((a, b) => byRisk(a, b) || a.netns.inode - b.netns.inode),
      notes: [
        ...discoveryNotes(found),
        ...(over
          ? [`${over} namespaces not read within this view's ${this.budgetMs} ms budget (shown as last read)`]
          : []),
      ],
      timing: {
        discoverMs: Math.round(ms * 10) / 10,
        readMs: Math.round(readMs * 10) / 10,
        at,
      },
    };
    // The TTL counts from the end of the read: a slow pass is not redone by the next request.
    this.host = { at: this.now(), view };
    return view;
  }

  /** The namespace discovery lists with this inode (rediscovering once if it is not known yet). */
  private find(inode: number, fresh = false): NetnsInfo {
    const known = (again: boolean): NetnsInfo | undefined =>
      this.discover(again).found.namespaces.find((n) => n.inode === inode);
    const ns = (fresh ? undefined : known(false)) ?? known(true);
    if (!ns) throw new NotListed(`netns: no network namespace ${inode} on this host (see /api/host)`);
    return ns;
  }

  /**
   * `read` in the namespace with this inode. A namespace found gone through a cached discovery is
   * looked up once more on a fresh one: the kernel gives a dead namespace's inode number to the
   * next one made, so the cached paths may lead to the old one's exited processes.
   */
  private readInode<T extends object>(inode: number, read: (ns: NetnsInfo) => T | SkippedNetns): T {
    let r = read(this.find(inode));
    if ('reason' in r && r.reason === 'gone') r = read(this.find(inode, true));
    if ('reason' in r) throw new NetnsUnavailable(r);
    return r;
  }

  /** The dashboard's census of `?netns=` (its own namespace when absent). */
  async census(param: string | null): Promise<DashboardCensus & { label?: string }> {
    const inode = parseNetnsParam(param);
    if (inode === undefined) return await dashboardCensus();
    const c = this.readInode(inode, (ns) => censusOfNetns(ns, { top: TOP }));
    // The namespace's own tcp_tw_reuse drives the model; unknown (read through /proc): the default.
    const reuse = Number(c.sysctls?.['net.ipv4.tcp_tw_reuse'] ?? 2);
    return { ...(await dashboardCensus(c, reuse === 0 || reuse === 1 ? reuse : 2)), label: ownerLabel(c) };
  }

  /** Doctor's findings for `?netns=` (its own namespace when absent). */
  doctor(param: string | null): NetnsDoctor | ReturnType<typeof runDoctor> {
    const inode = parseNetnsParam(param);
    if (inode === undefined) return runDoctor();
    return this.readInode(inode, (ns) => doctorOfNetns(ns));
  }

  /** GET routes of the host view: the answer and its status, or undefined for another path. */
  async route(path: string, query: URLSearchParams): Promise<{ status: number; body: unknown } | undefined> {
    try {
      if (path === '/api/host') return { status: 200, body: this.hostView() };
      if (path === '/api/census') return { status: 200, body: await this.census(query.get('netns')) };
      if (path === '/api/doctor') return { status: 200, body: this.doctor(query.get('netns')) };
      return undefined;
    } catch (err) {
      if (err instanceof NotListed) return { status: 404, body: { error: err.message } };
      if (err instanceof NetnsUnavailable)
        return { status: err.skipped.reason === 'gone' ? 410 : 503, body: { error: err.message } };
      throw err;
    }
  }
}

/** An inode discovery does not list (404). */
class NotListed extends UsageError {}
