/**
 * The four ways a TCP connection ends (client closes first, server first, both at once, RST),
 * each run for real between two sandbox hosts while the tracer (observe/trace.ts) records both
 * sides' state transitions. The HTML report draws these as sequence diagrams: what is drawn is
 * what the kernel did in this run, not a textbook table.
 *
 * tracefs is global, so the trace runs in twlab's own process with a port filter (each variant
 * has a port of its own); TIME-WAIT/FIN-WAIT-2 minisockets are looked up in both hosts.
 */
import type { Sandbox, SandboxSpec } from '../sandbox/types.js';
import { startTrace, type Transition } from '../observe/trace.js';
import type { MinisocketFound, TupleQuery } from '../observe/trace-diag.js';
import type { CloseSequence, CloseVariant, SideTransition } from '../report/lab-report.js';
import { connectPair } from './probes/scenarios.js';

export type { CloseSequence, CloseVariant, SideTransition };
import { TRACE_DIAG, remote, tcp } from './probes/remote.js';

export const CLOSE_VARIANTS = [
  'client-first',
  'server-first',
  'simultaneous',
  'rst',
] as const satisfies readonly CloseVariant[];

const BASE_PORT = 5400;
const ACTIONS: Record<CloseVariant, string> = {
  'client-first': 'client close(); server reads EOF, then close()',
  'server-first': 'server close(); client reads EOF, then close()',
  simultaneous: 'link down; both close(); link up 300 ms later: the FINs cross',
  rst: 'client sets SO_LINGER {1, 0} and close(): an RST, no FIN',
};

/** Both hosts' minisockets for the tracer's lookups (each side lives in its own namespace). */
function lookupBoth(sb: Sandbox): (q: TupleQuery[]) => Promise<MinisocketFound[]> {
  return async (queries) => {
    const found = await Promise.all(sb.hosts.map((h) => remote(h, TRACE_DIAG).lookupMinisockets(queries)));
    return found.flat();
  };
}

async function runVariant(sb: Sandbox, variant: CloseVariant, port: number): Promise<{ clientPort: number }> {
  const c = tcp(sb.client);
  const s = tcp(sb.server);
  const p = await connectPair(sb, port);
  await c.send({ fd: p.clientFd, bytes: 3 });
  await s.read({ fd: p.serverFd, timeoutMs: 1000, max: 3 });
  const closeThenPeer = async (first: 'client' | 'server'): Promise<void> => {
    const [a, afd, b, bfd] =
      first === 'client' ? [c, p.clientFd, s, p.serverFd] : [s, p.serverFd, c, p.clientFd];
    await a.close({ fd: afd });
    await b.read({ fd: bfd, timeoutMs: 2000 });
    await b.close({ fd: bfd });
  };
  if (variant === 'client-first') await closeThenPeer('client');
  else if (variant === 'server-first') await closeThenPeer('server');
  else if (variant === 'rst') {
    await c.linger({ fd: p.clientFd, linger: 0 });
    await c.close({ fd: p.clientFd });
    await s.read({ fd: p.serverFd, timeoutMs: 2000 });
    await s.close({ fd: p.serverFd });
  } else {
    await sb.setLink(false);
    await Promise.all([c.close({ fd: p.clientFd }), s.close({ fd: p.serverFd })]);
    await new Promise((r) => setTimeout(r, 300));
    await sb.setLink(true);
  }
  await s.close({ fd: p.listenerFd });
  return { clientPort: p.clientPort };
}

/** Record each close variant's transitions on both sides (about 2-5 s each, one sandbox). */
export async function recordCloseSequences(
  createSandbox: (spec: SandboxSpec) => Promise<Sandbox>,
  opts: { signal?: AbortSignal; variants?: readonly CloseVariant[] } = {},
): Promise<CloseSequence[]> {
  const sb = await createSandbox({ hosts: 2 });
  const out: CloseSequence[] = [];
  try {
    for (const [i, variant] of (opts.variants ?? CLOSE_VARIANTS).entries()) {
      if (opts.signal?.aborted) break;
      const port = BASE_PORT + i;
      const trace = await startTrace({ port, durationMs: 15_000, lookup: lookupBoth(sb), pollMs: 100 });
      try {
        const { clientPort } = await runVariant(sb, variant, port);
        // Time for the last segments and the tracer's minisocket lookup (every 100 ms); the
        // crossed FINs of a simultaneous close wait for a retransmission (RTO >= 200 ms, backing off).
        await new Promise((r) => setTimeout(r, variant === 'simultaneous' ? 3000 : 1200));
        const result = await trace.stop();
        // This connection's 4-tuple only: tracefs sees every namespace, others may use the port.
        const ours = (t: Transition): boolean =>
          (t.local.port === port && t.remote.port === clientPort) ||
          (t.local.port === clientPort && t.remote.port === port);
        const transitions = result.transitions
          .filter(ours)
          .map((t) => ({
            side: (t.local.port === port ? 'server' : 'client') as 'client' | 'server',
            atMs: Math.round((t.timeMs - result.startedMs) * 10) / 10,
            from: t.oldState,
            to: t.newState,
            source: t.source,
          }))
          // The listener's own LISTEN -> CLOSE is not part of the connection.
          .filter((t) => !(t.from === 'LISTEN' || t.to === 'LISTEN'));
        // Times from the connection's first transition (the trace starts a little before).
        const t0 = transitions[0]?.atMs ?? 0;
        for (const t of transitions) t.atMs = Math.round((t.atMs - t0) * 10) / 10;
        out.push({ variant, action: ACTIONS[variant], clientPort, serverPort: port, transitions });
      } catch (err) {
        await trace.stop().catch(() => undefined);
        out.push({
          variant,
          action: ACTIONS[variant],
          clientPort: 0,
          serverPort: port,
          transitions: [],
          error: err instanceof Error ? err.message : String(err),
        });
      }
    }
  } finally {
    await sb.close();
  }
  return out;
}
