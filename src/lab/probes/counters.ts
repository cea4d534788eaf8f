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

export async function tcpCounters(): Promise<TcpCounters> {
  const [snmp, netstat] = await Promise.all([
    readFile('/proc/self/net/snmp', 'utf8'),
    readFile('/proc/self/net/netstat', 'utf8'),
  ]);
  const tcp = parseNetstatPairs(snmp, 'Tcp');
  const ext = parseNetstatPairs(netstat, 'TcpExt');
  return {
    outRsts: tcp['OutRsts'] ?? 0,
    estabResets: tcp['EstabResets'] ?? 0,
    abortOnClose: ext['TCPAbortOnClose'] ?? 0,
    abortOnData: ext['TCPAbortOnData'] ?? 0,
    activeOpens: tcp['ActiveOpens'] ?? 0,
    passiveOpens: tcp['PassiveOpens'] ?? 0,
  };
}
