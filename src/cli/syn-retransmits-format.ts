/**
 * `twlab trace`'s lines for stalled and failed connects (observe/syn-retransmits.ts): one line per
 * connect that sent its SYN again, stalled or ended in SYN-SENT, and one summary line.
 */
import type { SlowConnect, SynRetransmitSummary } from '../observe/syn-retransmits.js';

function endpoint(e: { address: string; port: number }, family: 4 | 6): string {
  return family === 6 ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}

function secs(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** "12.345  4242  churn  198.51.100.1:40001 -> 203.0.113.2:8080 stalled 1.01 s: 1 SYN retransmit (at 1.00 s)". */
export function slowConnectLine(c: SlowConnect, startMs: number): string {
  const time = ((c.timeMs - startMs) / 1000).toFixed(3).padEnd(10);
  const who = `${(c.pid === 0 ? '?' : String(c.pid)).padEnd(8)} ${c.task.slice(0, 16).padEnd(16)}`;
  const tuple = `${endpoint(c.local, c.family)} -> ${endpoint(c.remote, c.family)}`;
  const took = c.durationMs === undefined ? '' : ` after ${secs(c.durationMs)}`;
  const what =
    c.outcome === 'established'
      ? c.stalled
        ? `connect stalled: established${took}`
        : `connect established${took}`
      : c.outcome === 'closed'
        ? `connect gave up in SYN-SENT${took}`
        : 'connect still in SYN-SENT at trace end';
  const at = c.retransmitsAtMs.length ? ` (at ${c.retransmitsAtMs.map(secs).join(', ')})` : '';
  const notSent = c.failedRetransmits ? `, ${c.failedRetransmits} not sent` : '';
  return `${time} ${who} ${tuple} ${what}: ${plural(c.synRetransmits, 'SYN retransmit')}${at}${notSent}\n`;
}

/** The summary line; '' when no connect retransmitted, stalled or gave up (or it was not traced). */
export function synSummaryLine(s: SynRetransmitSummary): string {
  const { established, closed, unfinished } = s.connects;
  if (!s.traced || s.synRetransmits + s.failedRetransmits + established + closed + unfinished === 0)
    return '';
  const parts = [plural(s.synRetransmits, 'SYN retransmit')];
  if (s.failedRetransmits) parts.push(`${s.failedRetransmits} not sent`);
  parts.push(
    `${plural(s.stalled, 'connect')} stalled >= ${s.stallMs} ms` +
      (s.longestStallMs === null ? '' : ` (longest ${secs(s.longestStallMs)})`),
  );
  parts.push(
    `${s.connects.closed} gave up in SYN-SENT` +
      (s.longestClosedMs === null ? '' : ` (longest ${secs(s.longestClosedMs)})`),
  );
  if (s.connects.unfinished) parts.push(`${s.connects.unfinished} still in SYN-SENT`);
  return `${parts.join(', ')}\n`;
}
