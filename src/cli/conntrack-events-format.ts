/**
 * `twlab trace --conntrack`: the flags (checked here: UsageError, exit 2) and the lines for
 * conntrack events (observe/conntrack-events.ts).
 */
import { existsSync } from 'node:fs';
import { UsageError } from '../common/errors.js';
import {
  CONNTRACK_EVENT_TYPES,
  type ConntrackEvent,
  type ConntrackEventType,
  type ConntrackEventsResult,
} from '../observe/conntrack-events.js';

export interface ConntrackFlags {
  conntrack?: boolean;
  conntrackNetns?: string;
  conntrackEvents?: string;
}

/** "new,destroy" -> the types; UsageError naming the bad one. */
export function parseConntrackTypes(text: string): ConntrackEventType[] {
  const types = text
    .split(',')
    .map((t) => t.trim().toLowerCase())
    .filter((t) => t !== '');
  if (types.length === 0)
    throw new UsageError(
      `--conntrack-events: '${text}' names no event type (accepted: new, update, destroy)`,
    );
  for (const t of types) {
    if (!(CONNTRACK_EVENT_TYPES as readonly string[]).includes(t)) {
      throw new UsageError(
        `--conntrack-events: unknown type '${t}' (accepted: new, update, destroy, comma-separated)`,
      );
    }
  }
  return types as ConntrackEventType[];
}

/** A PID (its /proc/PID/ns/net) or a namespace path (/run/netns/NAME, /proc/PID/ns/net). */
export function parseNetnsTarget(text: string): string {
  const path = /^\d+$/.test(text) ? `/proc/${text}/ns/net` : text;
  if (!path.startsWith('/')) {
    throw new UsageError(`--conntrack-netns: '${text}' is neither a PID nor an absolute namespace path`);
  }
  if (!existsSync(path))
    throw new UsageError(`--conntrack-netns: '${text}': no such namespace (${path} does not exist)`);
  return path;
}

/** What the flags ask for: undefined without --conntrack/--conntrack-netns/--conntrack-events. */
export function conntrackRequest(
  flags: ConntrackFlags,
): { netns?: string; types: ConntrackEventType[] } | undefined {
  if (!flags.conntrack && flags.conntrackNetns === undefined && flags.conntrackEvents === undefined)
    return undefined;
  return {
    netns: flags.conntrackNetns === undefined ? undefined : parseNetnsTarget(flags.conntrackNetns),
    types:
      flags.conntrackEvents === undefined ? ['new', 'destroy'] : parseConntrackTypes(flags.conntrackEvents),
  };
}

function tuple(src: string, sport: number, dst: string, dport: number, family: 4 | 6): string {
  const host = (a: string): string => (family === 6 ? `[${a}]` : a);
  return sport || dport ? `${host(src)}:${sport} -> ${host(dst)}:${dport}` : `${src} -> ${dst}`;
}

/** "1.234      [NEW]      tcp SYN_SENT  198.51.100.1:41000 -> 203.0.113.2:8080  NAT 203.0.113.1:40003". */
export function conntrackEventLine(e: ConntrackEvent, startMs: number): string {
  const time = ((e.timeMs - startMs) / 1000).toFixed(3).padEnd(10);
  const type = `[${e.type.toUpperCase()}]`.padEnd(10);
  const what = `${e.protocol}${e.state ? ` ${e.state}` : ''}`.padEnd(16);
  const nat = e.nat ? `  NAT ${e.family === 6 ? `[${e.nat.address}]` : e.nat.address}:${e.nat.port}` : '';
  return `${time} ${type} ${what} ${tuple(e.orig.src, e.orig.sport, e.orig.dst, e.orig.dport, e.family)}${nat}\n`;
}

/** The summary line. */
export function conntrackSummaryLine(r: ConntrackEventsResult): string {
  const counts = r.types.map((t) => `${r.counts[t]} ${t.toUpperCase()}`).join(', ');
  const lost = r.lost.overruns ? `, LOST events (${r.lost.overruns} receive-buffer overruns)` : '';
  const off =
    r.eventsSysctl === '0' ? ' (net.netfilter.nf_conntrack_events is 0 there: the kernel sends none)' : '';
  return `conntrack events in netns ${r.netns}: ${counts}${lost}${off}\n`;
}
