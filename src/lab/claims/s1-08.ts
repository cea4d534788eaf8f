/**
 * S1-08: letting the client close first keeps TIME_WAIT off the server, and a server that closes
 * on EOF needs a timeout for clients that vanish. Runs the seeds' server (`twlab serve` engine,
 * close client-first, idle timeout) and churn client in two hosts; then a client that vanishes
 * (link down) to see the idle timeout close its connection.
 */
import { SEVERAL_STEPS_BUDGET_MS } from '../runner.js';
import type { Claim, Judgement } from '../types.js';
import { CHURN, SERVER } from '../../traffic/remote.js';
import { tcp, rowsOn, pollFor, remote } from '../probes/remote.js';

export interface S1_08Measured {
  connections: number;
  succeeded: number;
  /** TIME_WAIT sockets toward/at the server port on each host after the churn. */
  clientTimeWait: number;
  serverTimeWait: number;
  /** How the server saw its connections end (client-first, idle-timeout, ...). */
  serverClosedHow: Record<string, number>;
  /** The vanished client's connection on the server after the idle timeout closed it. */
  vanishedServerStates: string[];
  idleTimeoutMs: number;
}

const PORT = 5081;
const N = 20;
const IDLE_MS = 800;

export const claim: Claim<S1_08Measured> = {
  id: 'S1-08',
  claim:
    'Letting the client close first keeps TIME_WAIT off the server; the server closes on EOF, with a timeout for clients that vanish.',
  source: {
    seed: '001_f645a441ee13af30.txt',
    where: 'English article, "Client Closes First"',
    quote:
      'The server can safely close in response to an EOF from the client, however it will also need to set a timeout',
  },
  estimateMs: 6000,
  budgetMs: SEVERAL_STEPS_BUDGET_MS,
  async run(ctx) {
    const sb = await ctx.sandbox({ hosts: 2 });
    const served = remote(sb.server, SERVER).runServer({
      address: '0.0.0.0',
      port: PORT,
      close: 'client-first',
      idleTimeoutMs: IDLE_MS,
      exitAfter: N + 1,
      durationMs: 15_000,
      reuseAddr: false,
    });
    // Handled here too: if the claim is cut short before it awaits the server, the sandbox's
    // close rejects this call, and that must not surface as an unhandled rejection.
    served.catch(() => undefined);
    // The server listens once its port shows LISTEN.
    await pollFor(
      async () => ((await rowsOn(sb.server, PORT, 'LISTEN')).length ? true : undefined),
      3000,
      20,
    );
    ctx.progress(`${N} connections, client closes first`);
    const churn = await remote(sb.client, CHURN).runChurn({
      to: `${sb.server.address}:${PORT}`,
      count: N,
      close: 'client-first',
      timeoutMs: 3000,
    });
    const clientRows = await tcp(sb.client).table({ port: PORT });
    const clientTimeWait = clientRows.filter((r) => r.peer.port === PORT && r.state === 'TIME_WAIT').length;
    const serverTimeWait = (await rowsOn(sb.server, PORT, 'TIME_WAIT')).length;

    ctx.progress('a client that vanishes (link down)');
    const c = tcp(sb.client);
    const d = await c.dial({ address: sb.server.address, port: PORT });
    if (!d.ok || !d.local) throw new Error(`connect for the vanishing client: ${d.errno}`);
    await c.send({ fd: d.fd, bytes: 3 });
    await pollFor(
      async () => ((await rowsOn(sb.server, PORT, 'ESTABLISHED')).length ? true : undefined),
      2000,
      20,
    );
    await sb.setLink(false);
    const summary = await served;
    const vanishedServerStates = (await rowsOn(sb.server, PORT))
      .filter((r) => r.peer.port === d.local!.port)
      .map((r) => r.state);
    await sb.setLink(true);
    await c.close({ fd: d.fd });
    return {
      connections: N,
      succeeded: churn.succeeded,
      clientTimeWait,
      serverTimeWait,
      serverClosedHow: Object.fromEntries(Object.entries(summary.closedHow).filter(([, v]) => v > 0)),
      vanishedServerStates,
      idleTimeoutMs: IDLE_MS,
    };
  },
  judge(m): Judgement {
    const how = Object.entries(m.serverClosedHow)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    const text =
      `${m.succeeded}/${m.connections} connections closed by the client first left ${m.clientTimeWait} TIME_WAIT on the client and ` +
      `${m.serverTimeWait} on the server (server saw: ${how}); the vanished client's connection was closed by the ` +
      `${m.idleTimeoutMs} ms idle timeout and is ${m.vanishedServerStates.join('+') || 'gone'} on the server`;
    const keptOff = m.succeeded > 0 && m.serverTimeWait === 0 && m.clientTimeWait >= m.succeeded;
    const timeoutWorked =
      (m.serverClosedHow['idle-timeout'] ?? 0) >= 1 && !m.vanishedServerStates.includes('ESTABLISHED');
    if (m.succeeded === 0) return { verdict: 'not-tested', explanation: `No connection succeeded: ${text}.` };
    if (keptOff && timeoutWorked) return { verdict: 'confirmed', explanation: `${text}.` };
    return { verdict: 'refuted', explanation: `${text}.` };
  },
};
