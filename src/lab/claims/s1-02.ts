/**
 * S1-02: simultaneous close. Two hosts; the link is held down while both sides close, so neither
 * FIN arrives before the other was sent; then the link comes up and the retransmitted FINs cross.
 * Both tables are sampled until they settle, recording every state each side went through; the
 * tracer (sock:inet_sock_set_state, global, so filtered to this connection's ports) catches the
 * short-lived states the table samples miss (CLOSING).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { SEVERAL_STEPS_BUDGET_MS } from '../runner.js';
import type { Claim, Judgement } from '../types.js';
import { connectPair } from '../probes/scenarios.js';
import { tcp, statesOf, pollFor } from '../probes/remote.js';
import { startTrace, type RunningTrace } from '../../observe/trace.js';
import { messageOf } from '../../common/errors.js';

export interface S1_02Measured {
  /** Every distinct state seen, in order, for the connection on each side after both closed. */
  clientStatesSeen: string[];
  serverStatesSeen: string[];
  /** States once settled (or when the bound ran out). */
  clientFinal: string[];
  serverFinal: string[];
  /** How long the link was held down, ms. */
  linkDownMs: number;
  /** Each side's state changes after the closes, from the tracer ("FIN_WAIT1→CLOSING"). */
  clientTraced: string[];
  serverTraced: string[];
  /** Why there is no trace, when tracefs could not be used. */
  traceError: string | null;
}

const PORT = 5002;
const TRACE_DRAIN_MS = 500;

export const claim: Claim<S1_02Measured> = {
  id: 'S1-02',
  claim: 'If both ends send FIN before either receives the other, both go through TIME_WAIT.',
  source: {
    seed: '001_f645a441ee13af30.txt',
    where: 'English article, "Normal Closure"',
    quote:
      'If both ends send a FIN before either end receives it, both ends will have to go through TIME_WAIT.',
  },
  estimateMs: 6000,
  budgetMs: SEVERAL_STEPS_BUDGET_MS,
  async run(ctx) {
    const sb = await ctx.sandbox({ hosts: 2 });
    const p = await connectPair(sb, PORT);
    let trace: RunningTrace | null = null;
    let traceError: string | null = null;
    try {
      trace = await startTrace({ port: PORT, durationMs: 20_000 });
    } catch (err) {
      traceError = messageOf(err);
    }
    const c = tcp(sb.client);
    const s = tcp(sb.server);
    ctx.progress('link down, both sides close');
    await sb.setLink(false);
    const downAt = Date.now();
    await Promise.all([c.close({ fd: p.clientFd }), s.close({ fd: p.serverFd })]);
    await s.close({ fd: p.listenerFd });
    const clientStatesSeen: string[] = [];
    const serverStatesSeen: string[] = [];
    const sample = async (): Promise<[string[], string[]]> => {
      const [cs, ss] = await Promise.all([
        statesOf(sb.client, p.clientPort, PORT),
        statesOf(sb.server, PORT, p.clientPort),
      ]);
      for (const x of cs) if (clientStatesSeen.at(-1) !== x) clientStatesSeen.push(x);
      for (const x of ss) if (serverStatesSeen.at(-1) !== x) serverStatesSeen.push(x);
      return [cs, ss];
    };
    // Keep the link down at least 300 ms, sampling: both FINs are sent and lost meanwhile.
    await pollFor(
      async () => {
        await sample();
        return Date.now() - downAt >= 300 ? true : undefined;
      },
      1000,
      20,
    );
    await sb.setLink(true);
    const linkDownMs = Date.now() - downAt;
    ctx.progress('link up, waiting for the FINs to cross');
    // Retransmission of the FINs waits for the RTO (>= 200 ms, backing off): bounded at 8 s.
    const settled = await pollFor<[string[], string[]]>(
      async () => {
        const [cs, ss] = await sample();
        const done = (x: string[]): boolean =>
          x.length === 0 || x.every((st) => st === 'TIME_WAIT' || st === 'CLOSE');
        return done(cs) && done(ss) ? [cs, ss] : undefined;
      },
      8000,
      20,
    );
    const [clientFinal, serverFinal] = settled ?? (await sample());
    const clientTraced: string[] = [];
    const serverTraced: string[] = [];
    if (trace) {
      // Let the tracer read the last events of the ring buffer before it stops.
      await sleep(TRACE_DRAIN_MS);
      const result = await trace.stop();
      for (const t of result.transitions) {
        if (t.source !== 'tracepoint') continue;
        // tracefs sees every namespace: keep this connection's 4-tuple only.
        if (t.local.port === PORT && t.remote.port === p.clientPort)
          serverTraced.push(`${t.oldState}→${t.newState}`);
        if (t.local.port === p.clientPort && t.remote.port === PORT)
          clientTraced.push(`${t.oldState}→${t.newState}`);
      }
    }
    return {
      clientTraced,
      serverTraced,
      traceError,
      clientStatesSeen,
      serverStatesSeen,
      clientFinal,
      serverFinal,
      linkDownMs,
    };
  },
  judge(m): Judgement {
    const both = m.clientFinal.includes('TIME_WAIT') && m.serverFinal.includes('TIME_WAIT');
    const traced = m.traceError
      ? ''
      : `; traced: client ${m.clientTraced.join(', ') || 'none'}, server ${m.serverTraced.join(', ') || 'none'}`;
    const path = `client ${m.clientStatesSeen.join('→') || 'none'}, server ${m.serverStatesSeen.join('→') || 'none'}${traced}`;
    const closing =
      m.clientTraced.includes('FIN-WAIT-1→CLOSING') && m.serverTraced.includes('FIN-WAIT-1→CLOSING')
        ? ' Both passed through CLOSING, so the FINs did cross (CLOSE is the full socket handing over to its TIME_WAIT minisocket).'
        : '';
    if (both)
      return {
        verdict: 'confirmed',
        explanation: `Both sides ended in TIME_WAIT after crossing FINs (${path}).${closing}`,
      };
    return { verdict: 'refuted', explanation: `Not both sides reached TIME_WAIT (${path}).` };
  },
};
