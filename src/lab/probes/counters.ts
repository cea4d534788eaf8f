/**
 * The namespace's TCP counters (/proc/self/net/snmp "Tcp:" and /proc/self/net/netstat
 * "TcpExt:"), read inside a sandbox host via remote(). A fresh namespace starts at zero, so the
 * values are what the experiment did: e.g. OutRsts = resets this host sent.
 */
import { readFile } from 'node:fs/promises';
import { parseNetstatPairs } from '../../observe/counters.js';

export interface TcpCounters {
  /** RSTs this host sent. */
  outRsts: number;
  /** Connections reset while established or in CLOSE_WAIT (the peer's RST arrived). */
  estabResets: number;
  /** TcpExt: connections aborted at close() (SO_LINGER 0 or unread data). */
  abortOnClose: number;
  abortOnData: number;
  activeOpens: number;
  passiveOpens: number;
}

/** SYNs this host sent again (TcpExt TCPSynRetrans) and its segments retransmitted (Tcp RetransSegs). */
export interface SynCounters {
  synRetrans: number;
  retransSegs: number;
  /** TcpExt PAWSEstab + PAWSActive + TW PAWS rejections: segments dropped for an old timestamp. */
  pawsRejected: number;
}

/** The namespace's "Tcp:" (snmp) and "TcpExt:" (netstat) counters by name. */
async function readTcpMibs(): Promise<{ tcp: Record<string, number>; ext: Record<string, number> }> {
  const [snmp, netstat] = await Promise.all([
    readFile('/proc/self/net/snmp', 'utf8'),
    readFile('/proc/self/net/netstat', 'utf8'),
  ]);
  return { tcp: parseNetstatPairs(snmp, 'Tcp'), ext: parseNetstatPairs(netstat, 'TcpExt') };
}

export async function synCounters(): Promise<SynCounters> {
  const { tcp, ext } = await readTcpMibs();
  return {
    synRetrans: ext['TCPSynRetrans'] ?? 0,
    retransSegs: tcp['RetransSegs'] ?? 0,
    pawsRejected: (ext['PAWSEstab'] ?? 0) + (ext['PAWSActive'] ?? 0) + (ext['PAWSTimewait'] ?? 0),
  };
}

export async function tcpCounters(): Promise<TcpCounters> {
  const { tcp, ext } = await readTcpMibs();
  return {
    outRsts: tcp['OutRsts'] ?? 0,
    estabResets: tcp['EstabResets'] ?? 0,
    abortOnClose: ext['TCPAbortOnClose'] ?? 0,
    abortOnData: ext['TCPAbortOnData'] ?? 0,
    activeOpens: tcp['ActiveOpens'] ?? 0,
    passiveOpens: tcp['PassiveOpens'] ?? 0,
  };
}
