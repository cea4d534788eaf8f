/**
 * The probe for the NAT claims, run inside the router through remote(): its conntrack entries one
 * by one (which client port got which NAT port, in which state). The summary reader
 * (observe/conntrack.ts) counts; this keeps the per-entry detail a claim about one NAT port needs.
 * A host's SYN retransmissions are counters.ts's synCounters.
 */
import { SyscallError } from '../../sockets/errno.js';
import { dumpConntrack, openCtnetlink } from '../../observe/conntrack-netlink.js';
import { eachProcEntry } from '../../observe/conntrack.js';
import type { ConntrackEntry } from '../../observe/conntrack-types.js';

/** One TCP conntrack entry towards `dport`, as the NAT claims read it. */
export interface NatEntry {
  /** The client's own source port (original tuple). */
  clientPort: number;
  /** The port the NAT gave it (where the replies come back to). */
  natPort: number;
  /** conntrack's TCP state (TIME_WAIT, ESTABLISHED, ...). */
  state: string | null;
  /** Seconds until the entry expires. */
  timeoutS: number;
}

/** The TCP entries of this namespace's conntrack table towards destination port `dport`. */
export function natEntries(opts: { dport: number }): NatEntry[] {
  const out: NatEntry[] = [];
  const visit = (e: ConntrackEntry): void => {
    if (e.protocol !== 6 || e.orig.dport !== opts.dport) return;
    out.push({ clientPort: e.orig.sport, natPort: e.reply.dport, state: e.state, timeoutS: e.timeoutS });
  };
  let sock;
  try {
    sock = openCtnetlink();
    dumpConntrack(sock, visit);
  } catch (err) {
    if (!(err instanceof SyscallError)) throw err;
    // No ctnetlink here (EPERM, EPROTONOSUPPORT): the same entries from /proc.
    out.length = 0;
    eachProcEntry('/proc/thread-self/net/nf_conntrack', visit);
  } finally {
    sock?.close();
  }
  return out.sort((a, b) => a.natPort - b.natPort || a.clientPort - b.clientPort);
}
