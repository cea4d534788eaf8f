/**
 * S1-09: can the TIME_WAIT timeout be shortened, and with which knob? Lists the kernel's own
 * net.ipv4 sysctls (inside the sandbox) for one that sets the TIME_WAIT length, and measures the
 * TIME_WAIT timer and the FIN_WAIT2 (orphan) timer with tcp_fin_timeout at its default and at 5 s,
 * waiting out the short FIN_WAIT2 to see it really end.
 */
import { SEVERAL_STEPS_BUDGET_MS } from '../runner.js';
import type { Claim, Judgement } from '../types.js';
import type { Sandbox } from '../../sandbox/types.js';
import { closeInOrder, connectPair } from '../probes/scenarios.js';
import { tcp, statesOf, pollFor } from '../probes/remote.js';

export interface TimerOutcome {
  finTimeout: string;
  /** Time left on a fresh TIME_WAIT socket's timer, ms. */
  timeWaitTimerMs: number | null;
  /** Time left on a fresh orphaned FIN_WAIT2 socket's timer, ms. */
  finWait2TimerMs: number | null;
  /** When waited out: how long the orphaned FIN_WAIT2 socket lasted, ms (null: not waited). */
  finWait2LifetimeMs: number | null;
}

export interface S1_09Measured {
  /** net.ipv4 sysctls whose name mentions TIME_WAIT (tw/timewait/time_wait/msl). */
  timeWaitRelatedKeys: string[];
  /** Of those, keys that set a TIME_WAIT length (name says len/timeout/msl). */
  timeWaitLengthKeys: string[];
  defaultFinTimeout: TimerOutcome;
  shortFinTimeout: TimerOutcome;
}

const SHORT = 5;

async function timers(sb: Sandbox, waitOut: boolean): Promise<TimerOutcome> {
  const finTimeout = (await sb.client.readSysctl('net.ipv4.tcp_fin_timeout')) ?? 'not-present';
  const tw = await closeInOrder(sb, 5091, 'client');
  const twRow = (await tcp(sb.client).table({ port: tw.clientPort })).find((r) => r.state === 'TIME_WAIT');
  // An orphan in FIN_WAIT2: the client closes, the server never does.
  const p = await connectPair(sb, 5092);
  await tcp(sb.client).close({ fd: p.clientFd });
  const closedAt = Date.now();
  const fw2 = await pollFor(
    async () => {
      const rows = await tcp(sb.client).table({ port: p.clientPort });
      return rows.find((r) => r.local.port === p.clientPort && r.state === 'FIN_WAIT2');
    },
    2000,
    10,
  );
  let finWait2LifetimeMs: number | null = null;
  if (waitOut && fw2) {
    const gone = await pollFor(
      async () => ((await statesOf(sb.client, p.clientPort, 5092)).length === 0 ? Date.now() : undefined),
      (SHORT + 5) * 1000,
      100,
    );
    finWait2LifetimeMs = gone ? gone - closedAt : null;
  }
  return {
    finTimeout,
    timeWaitTimerMs: twRow?.timerLeftMs ?? null,
    finWait2TimerMs: fw2?.timerLeftMs ?? null,
    finWait2LifetimeMs,
  };
}

export const claim: Claim<S1_09Measured> = {
  id: 'S1-09',
  claim: 'The TIME_WAIT timeout can be shortened (a knob exists on this kernel).',
  source: {
    seed: '001_f645a441ee13af30.txt',
    where: 'English article, "Reduce Timeout"; Chinese part, sysctl list (tcp_fin_timeout)',
    quote: 'it may also be possible to shorten the timeout associated with TIME_WAIT',
  },
  estimateMs: 9000,
  budgetMs: SEVERAL_STEPS_BUDGET_MS,
  async run(ctx) {
    const [dflt, short] = await Promise.all([
      ctx.sandbox({ hosts: 2 }),
      ctx.sandbox({ hosts: 2, sysctls: { tcp_fin_timeout: SHORT } }),
    ]);
    const ls = await dflt.client.exec(['ls', '/proc/sys/net/ipv4']);
    if (ls.code !== 0) throw new Error(`cannot list /proc/sys/net/ipv4 in the sandbox: ${ls.stderr.trim()}`);
    const keys = ls.stdout.split('\n').filter(Boolean);
    const timeWaitRelatedKeys = keys.filter((k) => /(^|_)tw(_|$)|timewait|time_wait|msl/i.test(k));
    const timeWaitLengthKeys = timeWaitRelatedKeys.filter((k) =>
      /msl|(timewait|time_wait|tw)_(len|timeout|time|length)$/i.test(k),
    );
    ctx.progress(`tcp_fin_timeout default and ${SHORT} s`);
    const [defaultFinTimeout, shortFinTimeout] = await Promise.all([
      timers(dflt, false),
      timers(short, true),
    ]);
    return {
      timeWaitRelatedKeys,
      timeWaitLengthKeys,
      defaultFinTimeout,
      shortFinTimeout,
    };
  },
  judge(m): Judgement {
    const s = (ms: number | null): string => (ms === null ? 'none' : `${(ms / 1000).toFixed(1)} s`);
    const d = m.defaultFinTimeout;
    const k = m.shortFinTimeout;
    const text =
      `TIME_WAIT timer ${s(d.timeWaitTimerMs)} with tcp_fin_timeout=${d.finTimeout} and ${s(k.timeWaitTimerMs)} with ${k.finTimeout}; ` +
      `FIN_WAIT2 timer ${s(d.finWait2TimerMs)} vs ${s(k.finWait2TimerMs)} (lasted ${s(k.finWait2LifetimeMs)}); ` +
      `TIME_WAIT-related sysctls here: ${m.timeWaitRelatedKeys.join(', ') || 'none'}`;
    if (d.timeWaitTimerMs === null || k.timeWaitTimerMs === null) {
      return { verdict: 'not-tested', explanation: `No TIME_WAIT timer was read: ${text}.` };
    }
    const finTimeoutShortens = k.timeWaitTimerMs < d.timeWaitTimerMs - 5000;
    if (m.timeWaitLengthKeys.length > 0 || finTimeoutShortens) {
      return {
        verdict: 'confirmed',
        explanation: `${text}${m.timeWaitLengthKeys.length ? `; length knob(s): ${m.timeWaitLengthKeys.join(', ')}` : ''}.`,
      };
    }
    return {
      verdict: 'refuted',
      explanation: `No sysctl sets the TIME_WAIT length and tcp_fin_timeout only changes FIN_WAIT2: ${text}.`,
    };
  },
};
