/**
 * Who holds a local port now, and whether a server restarting on it would bind, with and
 * without SO_REUSEADDR, by Linux's rule (net/ipv4/inet_connection_sock.c, inet_csk_get_port ->
 * inet_csk_bind_conflict / inet_bind_conflict): a socket `sk` binding port P conflicts with an
 * owner `sk2` of P whose address overlaps (either is the wildcard, or they are equal) unless
 *   sk->sk_reuse && sk2->sk_reuse && sk2->sk_state != TCP_LISTEN
 * (SO_REUSEPORT aside). TIME_WAIT minisockets are owners of the port too, and their sk_reuse is
 * tw_reuse, copied from the socket that entered TIME_WAIT (inet_twsk_alloc); accepted sockets
 * inherit it from their listener. So without SO_REUSEADDR any holder blocks; with it, a listener
 * blocks, and so does any holder whose own socket lacked SO_REUSEADDR, which sock_diag does not
 * report: that case is 'depends', settled only by trying (`tryBind`).
 */
import { isIP } from 'node:net';
import { tryBind, type BindResult } from '../sockets/socket.js';
import { openTcpDump, decodeRecord, type DumpOptions, type TcpSocketRecord } from './sockdiag.js';
import { DIAG } from './sockdiag-layout.js';
import { TCP_LISTEN, TCP_TIME_WAIT } from './sockdiag-states.js';

export type BindVerdict = 'succeeds' | 'fails' | 'depends';

export interface BindPrediction {
  verdict: BindVerdict;
  /** Why, naming the holders that decide it. */
  reason: string;
}

export interface PortHolder {
  state: string;
  local: string;
  remote: string;
  /** TIME-WAIT: ms until it leaves the table. */
  expiresMs?: number;
  uid?: number;
  inode?: number;
}

export interface PortReport {
  port: number;
  /** The address a restarting server would bind (default 0.0.0.0). */
  bindAddress: string;
  listeners: PortHolder[];
  timeWait: PortHolder[];
  /** Other sockets with this local port (accepted connections, connections being closed). */
  others: PortHolder[];
  /** Of all holders, those whose address overlaps bindAddress. */
  conflicting: number;
  prediction: { withoutReuseAddr: BindPrediction; withReuseAddr: BindPrediction };
  /** When asked for: what bind() actually did, just now (bound, then closed; never listened). */
  trial?: { withoutReuseAddr: BindResult; withReuseAddr: BindResult };
}

function endpoint(address: string, port: number): string {
  return isIP(address) === 6 ? `[${address}]:${port}` : `${address}:${port}`;
}

function isWildcard(address: string): boolean {
  return address === '0.0.0.0' || address === '::';
}

/**
 * Whether two local addresses overlap for bind (inet_rcv_saddr_equal with match_wildcard):
 * equal, or one is a wildcard. An IPv6 wildcard holder (dual-stack, as by default) overlaps every
 * IPv4 address; a v4-mapped IPv6 address overlaps its IPv4 form.
 */
export function addressesOverlap(bindAddress: string, holder: string): boolean {
  const norm = (a: string): string => (a.startsWith('::ffff:') && isIP(a.slice(7)) === 4 ? a.slice(7) : a);
  const a = norm(bindAddress);
  const b = norm(holder);
  const fa = isIP(a);
  const fb = isIP(b);
  if (fa === fb) return a === b || isWildcard(a) || isWildcard(b);
  // Different families: only the IPv6 wildcard covers IPv4 (an IPv4 wildcard does not cover v6).
  return (fa === 4 && b === '::') || (fb === 4 && a === '::');
}

/** Predict both binds from the holders (pure: the rule above, nothing measured here). */
export function predictBind(
  bindAddress: string,
  port: number,
  holders: readonly Pick<TcpSocketRecord, 'stateNumber' | 'local' | 'remote'>[],
): PortReport['prediction'] {
  const conflicting = holders.filter((h) => addressesOverlap(bindAddress, h.local.address));
  const listeners = conflicting.filter((h) => h.stateNumber === TCP_LISTEN);
  const tw = conflicting.filter((h) => h.stateNumber === TCP_TIME_WAIT);
  const other = conflicting.length - listeners.length - tw.length;
  const at = endpoint(bindAddress, port);
  if (conflicting.length === 0) {
    const free = { verdict: 'succeeds' as const, reason: `no socket holds a port overlapping ${at}` };
    return { withoutReuseAddr: free, withReuseAddr: free };
  }
  const parts = [
    listeners.length ? `${listeners.length} listener(s)` : '',
    tw.length ? `${tw.length} TIME-WAIT socket(s)` : '',
    other ? `${other} other socket(s)` : '',
  ]
    .filter(Boolean)
    .join(', ');
  const withoutReuseAddr: BindPrediction = {
    verdict: 'fails',
    reason: `EADDRINUSE: ${parts} hold the port on an overlapping address, and without SO_REUSEADDR every holder conflicts, TIME-WAIT included`,
  };
  const withReuseAddr: BindPrediction = listeners.length
    ? { verdict: 'fails', reason: `EADDRINUSE: a listener holds ${at}; SO_REUSEADDR never passes a listener` }
    : {
        verdict: 'depends',
        reason:
          `no listener, but ${parts} hold the port: bind succeeds only if each of them came from a socket that ` +
          `had SO_REUSEADDR itself (the kernel keeps that flag in the TIME-WAIT socket; sock_diag does not show it)`,
      };
  return { withoutReuseAddr, withReuseAddr };
}

export interface PortOptions {
  port: number;
  bindAddress?: string;
  source?: DumpOptions['source'];
  /** Really try both binds (bind then close at once; never listen). */
  tryBind?: boolean;
}

/** Dump the holders of a local port and predict (and, if asked, try) a restart's bind. */
export function inspectPort(opts: PortOptions): PortReport {
  const bindAddress = opts.bindAddress ?? '0.0.0.0';
  const holders: TcpSocketRecord[] = [];
  openTcpDump(opts.source ? { source: opts.source } : {}).scan((buf, off) => {
    if (buf.readUInt16BE(off + DIAG.sport) === opts.port) holders.push(decodeRecord(buf, off));
  });
  const view = (r: TcpSocketRecord): PortHolder => ({
    state: r.state,
    local: endpoint(r.local.address, r.local.port),
    remote: endpoint(r.remote.address, r.remote.port),
    ...(r.stateNumber === TCP_TIME_WAIT ? { expiresMs: r.expiresMs } : { uid: r.uid, inode: r.inode }),
  });
  const report: PortReport = {
    port: opts.port,
    bindAddress,
    listeners: holders.filter((h) => h.stateNumber === TCP_LISTEN).map(view),
    timeWait: holders
      .filter((h) => h.stateNumber === TCP_TIME_WAIT)
      .sort((a, b) => a.expiresMs - b.expiresMs)
      .map(view),
    others: holders.filter((h) => h.stateNumber !== TCP_LISTEN && h.stateNumber !== TCP_TIME_WAIT).map(view),
    conflicting: holders.filter((h) => addressesOverlap(bindAddress, h.local.address)).length,
    prediction: predictBind(bindAddress, opts.port, holders),
  };
  if (opts.tryBind) {
    report.trial = {
      withoutReuseAddr: tryBind({ address: bindAddress, port: opts.port, reuseAddr: false }),
      withReuseAddr: tryBind({ address: bindAddress, port: opts.port, reuseAddr: true }),
    };
  }
  return report;
}
