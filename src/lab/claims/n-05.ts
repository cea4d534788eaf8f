/**
 * N-05: a NAT port whose conntrack entry is in TIME_WAIT is not given to a new connection: the
 * entry holds the port until it expires. Measured with a NAT of ONE port, so the NAT has no other
 * choice: connections from distinct client ports, one after the other, each started once the
 * router's entry of the one before is in TIME_WAIT. Twice: closing at the client first (the server
 * keeps nothing), and at the server first (the server keeps TIME_WAIT for exactly the 4-tuple the
 * NAT is about to hand out again), which shows what the server's own TIME_WAIT does to the reuse.
 */
import type { Sandbox } from '../../sandbox/types.js';
import { CHURN } from '../../traffic/remote.js';
import { errorText } from '../harness.js';
import { COUNTERS, NAT_PROBE, pollFor, remote, rowsOn } from '../probes/remote.js';
import { SEVERAL_STEPS_BUDGET_MS } from '../runner.js';
import type { Claim, Judgement, LabContext } from '../types.js';
import { FIELD, NAT_SERVER_PORT, natSandbox, poolText, startNatServer } from './n-common.js';

const ONE_PORT = { low: 40000, high: 40000 };
/** Connections at most per sequence; it stops earlier once two have taken the port over. */
const MAX_STEPS = 8;
const ENOUGH_REUSES = 2;
const FIRST_CLIENT_PORT = 21001;
/** One SYN sent again (at 1 s) and then given up: a dropped SYN costs 2.5 s, not the default 5. */
const CONNECT_TIMEOUT_MS = 2500;

export interface N05Step {
  clientPort: number;
  /** The router's entry holding the only NAT port just before this connection (null: none). */
  holderClientPort: number | null;
  holderState: string | null;
  holderLeftS: number | null;
  /** TIME_WAIT sockets the server held on its port just before this connection. */
  serverTimeWaitBefore: number;
  ok: boolean;
  error: string | null;
  /** socket() to close(), ms. */
  ms: number;
  /** The NAT port the router gave this connection (null: no entry seen). */
  natPort: number | null;
  /** SYNs the client sent again for this connection. */
  synsSentAgain: number;
}

export interface N05Sequence {
  close: 'client-first' | 'server-first';
  natPool: string;
  steps: N05Step[];
}

export interface N05Measured {
  clientFirst: N05Sequence;
  serverFirst: N05Sequence;
}

/** A connection started while the only NAT port's entry was in TIME_WAIT, and whether it got the port. */
const inTimeWait = (s: N05Step): boolean => s.holderState === 'TIME_WAIT';
const tookOver = (s: N05Step, port: number): boolean => inTimeWait(s) && s.ok && s.natPort === port;

async function sequence(ctx: LabContext, close: 'client-first' | 'server-first'): Promise<N05Sequence> {
  const sb: Sandbox = await natSandbox(ctx, { pool: ONE_PORT });
  await startNatServer(sb, { close });
  const probe = remote(sb.router!, NAT_PROBE);
  const client = remote(sb.client, COUNTERS);
  const steps: N05Step[] = [];
  // Bounded: MAX_STEPS connections. Whether the NAT may take a TIME_WAIT entry's port over is
  // decided per connection by the kernel (nf_nat_used_tuple_harder() evicts the old entry only
  // when the new SYN's sequence number is past the old connection's: random ISNs, about half the
  // time), so the sequence goes on until it has seen the takeover twice.
  for (
    let i = 0;
    i < MAX_STEPS && steps.filter((s) => tookOver(s, ONE_PORT.low)).length < ENOUGH_REUSES;
    i++
  ) {
    ctx.signal.throwIfAborted();
    const port = FIRST_CLIENT_PORT + i;
    ctx.progress(`${close}: connection ${i + 1} through a 1-port NAT`);
    const holder = (await probe.natEntries({ dport: NAT_SERVER_PORT })).find(
      (e) => e.natPort === ONE_PORT.low,
    );
    const serverTw = (await rowsOn(sb.server, NAT_SERVER_PORT, 'TIME_WAIT')).length;
    const syn0 = await client.synCounters();
    const s = await remote(sb.client, CHURN).runChurn({
      to: `${sb.server.address}:${NAT_SERVER_PORT}`,
      bind: `${sb.client.address}:${port}`,
      count: 1,
      close,
      stopOnError: true,
      timeoutMs: CONNECT_TIMEOUT_MS,
    });
    const syn1 = await client.synCounters();
    // Wait (bounded) until this connection's entry is in TIME_WAIT, so the next one starts
    // exactly in the case the claim is about.
    const mine =
      s.succeeded === 1
        ? await pollFor(
            async () => {
              const e = (await probe.natEntries({ dport: NAT_SERVER_PORT })).find(
                (x) => x.clientPort === port,
              );
              return e?.state === 'TIME_WAIT' ? e : undefined;
            },
            3000,
            50,
          )
        : undefined;
    steps.push({
      clientPort: port,
      holderClientPort: holder?.clientPort ?? null,
      holderState: holder?.state ?? null,
      holderLeftS: holder?.timeoutS ?? null,
      serverTimeWaitBefore: serverTw,
      ok: s.succeeded === 1,
      error: errorText(s.firstError),
      ms: Math.round(s.succeeded === 1 ? s.latencyMs.max : s.durationMs),
      natPort: mine?.natPort ?? null,
      synsSentAgain: syn1.synRetrans - syn0.synRetrans,
    });
  }
  return { close, natPool: poolText(ONE_PORT), steps };
}

const stepText = (s: N05Step): string =>
  `client port ${s.clientPort}${s.holderState ? ` (port held by ${s.holderClientPort}'s entry, ${s.holderState}, ${s.holderLeftS} s left; server TIME_WAIT ${s.serverTimeWaitBefore})` : ''}: ${s.ok ? `ok in ${s.ms} ms` : `failed ${s.error ?? '?'} after ${s.ms} ms`}, NAT port ${s.natPort ?? 'none'}, ${s.synsSentAgain} SYN(s) sent again`;

function judgeN05(m: N05Measured): Judgement {
  const port = Number(m.clientFirst.natPool.split('-')[0]);
  const conditions = [
    ...m.clientFirst.steps.map((s) => `client-first, ${stepText(s)}`),
    ...m.serverFirst.steps.map((s) => `server-first, ${stepText(s)}`),
  ];
  const inTw = m.clientFirst.steps.filter(inTimeWait);
  const reused = inTw.filter((s) => tookOver(s, port));
  const dropped = inTw.filter((s) => !s.ok);
  const sf = m.serverFirst.steps.filter(inTimeWait);
  const sfReused = sf.filter((s) => tookOver(s, port));
  // The server's TIME_WAIT shows on a takeover as a SYN the client had to send again (at once
  // after the server answered the old connection's way, or after the 1 s timer: late).
  const sfHindered = sfReused.filter((s) => s.ms >= 500 || s.synsSentAgain > 0);
  const serverPart = sf.length
    ? ` With the server closing first (it still held TIME_WAIT for that very 4-tuple), ${sfReused.length} of ${sf.length} took the port over, ${sfHindered.length} of them only after sending the SYN again (${sfHindered.map((s) => `${s.synsSentAgain} SYN(s) again, ${s.ms} ms`).join('; ') || 'none'}).`
    : '';
  const rest = dropped.length
    ? ` The other ${dropped.length} found the port still taken and their SYNs were dropped (${dropped.map((s) => s.error ?? 'failed').join(', ')}): the kernel evicts a TIME_WAIT entry for a new connection only when the new SYN's sequence number is past the old connection's (nf_nat_used_tuple_harder()).`
    : '';
  if (reused.length > 0) {
    return {
      verdict: 'refuted',
      explanation: `Through a NAT of one port (${port}), ${reused.length} of ${inTw.length} connections from a new client port were given port ${port} while the entry holding it was in TIME_WAIT: the new connection takes the port and the old entry goes.${rest}${serverPart}`,
      conditions,
    };
  }
  if (inTw.length > 0 && dropped.length === inTw.length) {
    return {
      verdict: 'confirmed',
      explanation: `All ${inTw.length} connections started while the only NAT port's entry was in TIME_WAIT failed (${dropped.map((s) => s.error ?? '?').join(', ')}).${serverPart}`,
      conditions,
    };
  }
  return {
    verdict: 'not-tested',
    explanation: `The port's entry was never in TIME_WAIT when a connection started, or connections went elsewhere: ${conditions.join('; ')}.`,
  };
}

export const claim: Claim<N05Measured> = {
  id: 'N-05',
  claim:
    'A NAT port whose conntrack entry is in TIME_WAIT stays reserved: it is not handed to a new connection until the entry expires.',
  source: {
    seed: FIELD,
    where:
      'cilium/cilium issue #45863 "Ephemeral Port Reuse Ignores TCP fin_timeout", https://github.com/cilium/cilium/issues/45863',
    quote:
      'CT entries in TIME_WAIT state are retained until their configured lifetime (`--bpf-ct-timeout-time-wait`) expires ... This is the behaviour the NAT/CT maps exist to preserve',
  },
  estimateMs: 15_000,
  budgetMs: SEVERAL_STEPS_BUDGET_MS,
  async run(ctx) {
    const [clientFirst, serverFirst] = await Promise.all([
      sequence(ctx, 'client-first'),
      sequence(ctx, 'server-first'),
    ]);
    return { clientFirst, serverFirst };
  },
  judge: judgeN05,
};
