/**
 * S1-03: closing a listener. Without pending connections: what is left of its port. With
 * connections established in its accept queue but never accepted: what the kernel does to them
 * on close (what the clients read, and both hosts' tables).
 */
import type { Claim, Judgement } from '../types.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { tcp, rowsOn, statesOf } from '../probes/remote.js';

export interface S1_03Measured {
  /** Sockets left on the port after closing a listener that had no pending connection. */
  idleListenerRowsAfterClose: string[];
  /** Connections established in the accept queue before the close. */
  pendingConnections: number;
  /** The clients' states before the close (ESTABLISHED expected). */
  pendingClientStatesBefore: string[];
  /** What each client's read gave after the listener closed: errno name, or "EOF", or "nothing". */
  clientReads: string[];
  /** The connections' states on each host after the close settled. */
  serverStatesAfter: string[];
  clientStatesAfter: string[];
}

const IDLE_PORT = 5031;
const PORT = 5032;
const PENDING = 3;

export const claim: Claim<S1_03Measured> = {
  id: 'S1-03',
  claim:
    'A listening socket with no pending connections closes straight to CLOSED; with pending connections TIME_WAIT is inevitable.',
  source: {
    seed: '001_f645a441ee13af30.txt',
    where: 'English article, "Normal Closure of Listen Sockets"',
    quote: 'If connections are pending however, FIN_WAIT_1 is entered, and a TIME_WAIT is inevitable.',
  },
  estimateMs: 5000,
  async run(ctx) {
    const sb = await ctx.sandbox({ hosts: 2 });
    const s = tcp(sb.server);
    const c = tcp(sb.client);

    const idle = await s.listener({ address: '0.0.0.0', port: IDLE_PORT, reuseAddr: false });
    if (!idle.ok) throw new Error(`listen on ${IDLE_PORT}: ${idle.errno}`);
    await s.close({ fd: idle.fd });
    const idleListenerRowsAfterClose = (await rowsOn(sb.server, IDLE_PORT)).map((r) => r.state);

    ctx.progress(`${PENDING} connections left in the accept queue`);
    const l = await s.listener({ address: '0.0.0.0', port: PORT, reuseAddr: false, backlog: 16 });
    if (!l.ok) throw new Error(`listen on ${PORT}: ${l.errno}`);
    const clients: Array<{ fd: number; port: number }> = [];
    for (let i = 0; i < PENDING; i++) {
      const d = await c.dial({ address: sb.server.address, port: PORT });
      if (!d.ok || !d.local) throw new Error(`connect ${i + 1} to the listener failed: ${d.errno}`);
      await c.send({ fd: d.fd, bytes: 10 });
      clients.push({ fd: d.fd, port: d.local.port });
    }
    const pendingClientStatesBefore = (
      await Promise.all(clients.map((k) => statesOf(sb.client, k.port, PORT)))
    ).flat();
    await s.close({ fd: l.fd });
    const clientReads: string[] = [];
    for (const k of clients) {
      const r = await c.read({ fd: k.fd, timeoutMs: 1000 });
      clientReads.push(!r.ok ? (r.errno ?? 'error') : r.eof ? 'EOF' : 'nothing');
    }
    for (const k of clients) await c.close({ fd: k.fd });
    // Let any FIN/ACK exchange finish before reading the tables.
    await sleep(300);
    const serverStatesAfter = (await rowsOn(sb.server, PORT)).map((r) => r.state);
    const clientStatesAfter = (
      await Promise.all(clients.map((k) => statesOf(sb.client, k.port, PORT)))
    ).flat();
    return {
      idleListenerRowsAfterClose,
      pendingConnections: pendingClientStatesBefore.filter((x) => x === 'ESTABLISHED').length,
      pendingClientStatesBefore,
      clientReads,
      serverStatesAfter,
      clientStatesAfter,
    };
  },
  judge(m): Judgement {
    const idleClean = m.idleListenerRowsAfterClose.length === 0;
    const tw = [...m.serverStatesAfter, ...m.clientStatesAfter].filter((x) => x === 'TIME_WAIT').length;
    const resets = m.clientReads.filter((r) => r === 'ECONNRESET').length;
    const part1 = idleClean
      ? 'an idle listener left nothing on its port'
      : `an idle listener left ${m.idleListenerRowsAfterClose.join(', ')}`;
    const part2 =
      `closing a listener with ${m.pendingConnections} unaccepted connections gave their clients ` +
      `${m.clientReads.join(', ')} and left ${tw} TIME_WAIT socket(s) on either host`;
    if (m.pendingConnections === 0) {
      return {
        verdict: 'not-tested',
        explanation: `No connection was pending in the accept queue; ${part1}.`,
      };
    }
    if (idleClean && tw > 0) return { verdict: 'confirmed', explanation: `${part1}; ${part2}.` };
    if (idleClean && tw === 0) {
      return {
        verdict: 'refuted',
        explanation: `${part1}, but ${part2}${resets ? ': the kernel resets pending connections instead of closing them' : ''}.`,
      };
    }
    return { verdict: 'refuted', explanation: `${part1}; ${part2}.` };
  },
};
