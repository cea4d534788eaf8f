/**
 * S1-04: the application dies (SIGKILL) while its connection is active. A separate process holds
 * the connection on the client host; the server, like a normal server, closes on EOF. Measured
 * twice: with nothing unread in the dead process's receive buffer, and with unread data there.
 */
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { createInterface } from 'node:readline';
import { SEVERAL_STEPS_BUDGET_MS } from '../runner.js';
import type { Claim, Judgement } from '../types.js';
import type { Sandbox } from '../../sandbox/types.js';
import { distPath } from '../../common/paths.js';
import { tcp, statesOf, pollFor } from '../probes/remote.js';

export interface DeathOutcome {
  /** Bytes the server sent that the dead process never read. */
  unreadBytes: number;
  /** What the server's read gave after the kill: "EOF" or an errno name. */
  serverRead: string;
  /** The dead process's port on the client host after the server closed. */
  clientStatesAfter: string[];
  /** bind() to that port again without SO_REUSEADDR: "ok" or the errno (is the port tied up?). */
  rebindWithoutReuse: string;
}

export interface S1_04Measured {
  nothingUnread: DeathOutcome;
  unreadData: DeathOutcome;
}

/** A Node process start can take seconds on a loaded 2-core machine. */
const HOLDER_START_MS = 15_000;

async function dieWhileConnected(sb: Sandbox, port: number, unread: number): Promise<DeathOutcome> {
  const s = tcp(sb.server);
  const c = tcp(sb.client);
  const l = await s.listener({ address: '0.0.0.0', port, reuseAddr: false });
  if (!l.ok) throw new Error(`listen on ${port}: ${l.errno}`);
  const child = sb.client.spawn([
    process.execPath,
    distPath('lab/probes/holder.js'),
    sb.server.address,
    String(port),
  ]);
  // The sandbox may kill the holder (and its pipe) at any time: those errors are not the measurement.
  child.on('error', () => undefined);
  child.stdout?.on('error', () => undefined);
  try {
    const lines = createInterface({ input: child.stdout! });
    const [line] = (await once(lines, 'line', { signal: AbortSignal.timeout(HOLDER_START_MS) }).catch(() => {
      throw new Error(`the holder process did not connect within ${HOLDER_START_MS / 1000} s`);
    })) as [string];
    const hello = JSON.parse(line) as { port?: number; error?: string };
    if (!hello.port) throw new Error(`the holder process could not connect: ${hello.error}`);
    const a = await s.accept({ fd: l.fd, timeoutMs: 3000 });
    if (!a.ok) throw new Error(`accept: ${a.errno}`);
    if (unread > 0) await s.send({ fd: a.fd, bytes: unread });
    // Let the data land in the holder's receive buffer before it dies.
    await sleep(200);
    child.kill('SIGKILL');
    await once(child, 'exit');
    const r = await s.read({ fd: a.fd, timeoutMs: 2000 });
    const serverRead = !r.ok ? (r.errno ?? 'error') : r.eof ? 'EOF' : 'nothing';
    await s.close({ fd: a.fd });
    await s.close({ fd: l.fd });
    await pollFor(async () => {
      const st = await statesOf(sb.client, hello.port!, port);
      return st.some((x) => x.startsWith('FIN_WAIT')) ? undefined : true;
    }, 2000);
    const clientStatesAfter = await statesOf(sb.client, hello.port, port);
    const b = await c.open({ reuseAddr: false, bind: { address: '0.0.0.0', port: hello.port } });
    if (b.fd >= 0) await c.close({ fd: b.fd });
    return {
      unreadBytes: unread,
      serverRead,
      clientStatesAfter,
      rebindWithoutReuse: b.ok ? 'ok' : (b.errno ?? 'error'),
    };
  } finally {
    child.kill('SIGKILL');
  }
}

export const claim: Claim<S1_04Measured> = {
  id: 'S1-04',
  claim: 'If the application dies while a connection is active, its port is tied up in TIME_WAIT.',
  source: {
    seed: '001_f645a441ee13af30.txt',
    where: 'English article, "Abnormal Closure"',
    quote:
      'If the local application dies while a connection is active, the port will be tied up in TIME_WAIT.',
  },
  estimateMs: 6000,
  budgetMs: SEVERAL_STEPS_BUDGET_MS,
  async run(ctx) {
    const sb = await ctx.sandbox({ hosts: 2 });
    ctx.progress('kill -9 with nothing unread');
    const nothingUnread = await dieWhileConnected(sb, 5041, 0);
    ctx.progress('kill -9 with unread data');
    const unreadData = await dieWhileConnected(sb, 5042, 20_000);
    return { nothingUnread, unreadData };
  },
  judge(m): Judgement {
    const tied = (o: DeathOutcome): boolean => o.clientStatesAfter.includes('TIME_WAIT');
    const say = (o: DeathOutcome): string =>
      `${o.unreadBytes} B unread: server read ${o.serverRead}, dead process's port ${o.clientStatesAfter.join('+') || 'free'}, re-bind ${o.rebindWithoutReuse}`;
    const text = `${say(m.nothingUnread)}; ${say(m.unreadData)}.`;
    const a = tied(m.nothingUnread);
    const b = tied(m.unreadData);
    if (a && b) return { verdict: 'confirmed', explanation: `The port was in TIME_WAIT both times: ${text}` };
    if (!a && !b) return { verdict: 'refuted', explanation: `The port was not in TIME_WAIT: ${text}` };
    const cond = (o: DeathOutcome): string =>
      `${o.unreadBytes > 0 ? 'unread data in the receive buffer' : 'receive buffer empty'}: ${tied(o) ? 'TIME_WAIT' : `no TIME_WAIT (server read ${o.serverRead})`}`;
    return {
      verdict: 'depends',
      explanation: `The kernel closes a dead process's sockets like close(): ${text}`,
      conditions: [cond(m.nothingUnread), cond(m.unreadData)],
    };
  },
};
