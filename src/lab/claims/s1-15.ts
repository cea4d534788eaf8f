/**
 * S1-15: the sysctl list in the Chinese part, each said to help a busy host with TIME_WAIT. Each
 * setting is applied alone, in its own two-host sandbox with a 150-port ephemeral range, and the
 * seed's failing client (the churn engine: connect, send "foo", close first, 75 per second, stop
 * at the first error, at most 300) runs against the seed's server. Per setting: where the client
 * failed, the TIME_WAIT sockets it left and their timer, compared with no setting at all.
 */
import { SEVERAL_STEPS_BUDGET_MS } from '../runner.js';
import type { Claim, Judgement } from '../types.js';
import type { Sandbox, SysctlOutcome } from '../../sandbox/types.js';
import { CHURN, SERVER } from '../../traffic/remote.js';
import { tcp, rowsOn, pollFor, remote } from '../probes/remote.js';

export interface SettingOutcome {
  /** "baseline" or "key=value" as the seed lists it. */
  setting: string;
  /** What the sandbox did with it: applied, not-present, rejected. */
  status: SysctlOutcome['status'] | 'none';
  connectionsTried: number;
  connectionsOk: number;
  /** The first failure's errno and iteration; null when none failed within the bound. */
  failure: { errno: string; atIteration: number } | null;
  /** TIME_WAIT sockets the client held when the run ended. */
  timeWaitLeft: number;
  /** Longest TIME_WAIT timer left on the client at the end, ms (the lifetime a fresh one gets). */
  timeWaitTimerMs: number | null;
}

export interface S1_15Measured {
  portRange: string;
  attemptsBound: number;
  ratePerSecond: number;
  runs: SettingOutcome[];
}

const PORT = 5151;
const RANGE = { low: 40_000, high: 40_149 };
const COUNT = 300;
// 75/s needs 75 ports per second of tcp_tw_reuse_delay (1 s): the 150 ports leave room for a
// client that catches up in a burst after being starved of CPU.
const RATE = 75;
const SERVER_BOUND_MS = 30_000;
const BATCH = 4;

/** The settings exactly as the seed lists them (its sysctl.conf lines and its "readme"). */
const SETTINGS: Array<[string, string] | null> = [
  null,
  ['tcp_tw_reuse', '1'],
  ['tcp_tw_recycle', '1'],
  ['tcp_syncookies', '1'],
  ['tcp_fin_timeout', '30'],
  ['tcp_keepalive_time', '1800'],
  ['tcp_max_syn_backlog', '8192'],
];

async function churnWith(sb: Sandbox, setting: [string, string] | null): Promise<SettingOutcome> {
  // The server outlives any client run (its start may lag under load); the sandbox's close ends it.
  const served = remote(sb.server, SERVER).runServer({
    address: '0.0.0.0',
    port: PORT,
    close: 'client-first',
    idleTimeoutMs: 2000,
    durationMs: SERVER_BOUND_MS,
  });
  served.catch(() => undefined);
  await pollFor(async () => ((await rowsOn(sb.server, PORT, 'LISTEN')).length ? true : undefined), 3000, 20);
  const churn = await remote(sb.client, CHURN).runChurn({
    to: `${sb.server.address}:${PORT}`,
    count: COUNT,
    rate: RATE,
    close: 'client-first',
    stopOnError: true,
    timeoutMs: 2000,
  });
  const rows = (await tcp(sb.client).table({ port: PORT })).filter(
    (r) => r.peer.port === PORT && r.state === 'TIME_WAIT',
  );
  const outcome = setting ? sb.sysctls.find((o) => o.key.endsWith(`.${setting[0]}`)) : undefined;
  return {
    setting: setting ? `${setting[0]}=${setting[1]}` : 'baseline',
    status: outcome?.status ?? 'none',
    connectionsTried: churn.attempted,
    connectionsOk: churn.succeeded,
    failure: churn.firstError
      ? { errno: churn.firstError.errno, atIteration: churn.firstError.atIteration }
      : null,
    timeWaitLeft: rows.length,
    timeWaitTimerMs: rows.length ? Math.max(...rows.map((r) => r.timerLeftMs ?? 0)) : null,
  };
}

export const claim: Claim<S1_15Measured> = {
  id: 'S1-15',
  claim:
    'tcp_tw_reuse, tcp_tw_recycle, tcp_syncookies, tcp_fin_timeout, tcp_keepalive_time and tcp_max_syn_backlog, set as listed, relieve TIME_WAIT and let the host handle more connections.',
  source: {
    seed: '001_f645a441ee13af30.txt',
    where: 'Chinese part, /etc/sysctl.conf lines and their "readme"',
    quote:
      'net.ipv4.tcp_tw_reuse = 1 / net.ipv4.tcp_tw_recycle = 1 / net.ipv4.tcp_syncookies=1 ... tcp_fin_timeout=30 ... tcp_keepalive_time=1800 ... tcp_max_syn_backlog=8192',
  },
  estimateMs: 20_000,
  budgetMs: SEVERAL_STEPS_BUDGET_MS,
  async run(ctx) {
    const runs: SettingOutcome[] = [];
    const sbs: Sandbox[] = [];
    // A few sandboxes at a time: with all seven at once the paced clients and servers starve on
    // two cores and fail for reasons of their own (ECONNREFUSED from a server that lags behind).
    for (let i = 0; i < SETTINGS.length; i += BATCH) {
      const batch = SETTINGS.slice(i, i + BATCH);
      ctx.progress(`churn with ${batch.map((s) => (s ? s.join('=') : 'no setting')).join(', ')}`);
      const out = await Promise.all(
        batch.map(async (setting) => {
          const sb = await ctx.sandbox({
            hosts: 2,
            portRange: RANGE,
            sysctls: setting ? { [setting[0]]: setting[1] } : {},
          });
          sbs.push(sb);
          return churnWith(sb, setting);
        }),
      );
      runs.push(...out);
    }
    return {
      portRange: `${RANGE.low}-${RANGE.high}`,
      attemptsBound: COUNT,
      ratePerSecond: RATE,
      runs,
    };
  },
  judge(m): Judgement {
    const base = m.runs.find((r) => r.setting === 'baseline');
    if (!base || !base.failure) {
      return {
        verdict: 'not-tested',
        explanation: `The client did not fail without any setting (${base?.connectionsOk ?? 0} of ${m.attemptsBound}), so there is nothing to relieve.`,
      };
    }
    const sec = (ms: number | null): string =>
      ms === null ? 'no TIME_WAIT' : `TIME_WAIT timer ${(ms / 1000).toFixed(0)} s`;
    const say = (r: SettingOutcome): string =>
      `${r.setting}: ${r.failure ? `${r.failure.errno} at connection ${r.failure.atIteration}` : `no failure in ${r.connectionsTried}`}, ` +
      `${r.timeWaitLeft} TIME_WAIT, ${sec(r.timeWaitTimerMs)}`;
    const conditions: string[] = [];
    let helped = 0;
    let tested = 0;
    for (const r of m.runs) {
      if (r === base) continue;
      if (r.status !== 'applied') {
        conditions.push(`${r.setting}: ${r.status} on this kernel, no effect possible`);
        continue;
      }
      if (r.failure && r.failure.errno !== base.failure.errno) {
        conditions.push(
          `${say(r)} → inconclusive: the client failed for another reason than the baseline's ${base.failure.errno}`,
        );
        continue;
      }
      tested++;
      const later = !r.failure || r.failure.atIteration > base.failure.atIteration * 1.2;
      const shorter =
        r.timeWaitTimerMs !== null &&
        base.timeWaitTimerMs !== null &&
        r.timeWaitTimerMs < base.timeWaitTimerMs - 5000;
      if (later || shorter) helped++;
      conditions.push(`${say(r)} → ${later || shorter ? 'helps' : 'no effect on this client'}`);
    }
    const text = `${say(base)}; ${conditions.join('; ')}`;
    const inconclusive =
      m.runs.length - 1 - tested - conditions.filter((c) => c.includes('on this kernel')).length;
    if (helped === 0 && inconclusive > 0) {
      return {
        verdict: 'not-tested',
        explanation: `${inconclusive} run(s) failed for another reason than the baseline: ${text}.`,
      };
    }
    if (tested > 0 && helped === tested && conditions.length === tested)
      return { verdict: 'confirmed', explanation: text };
    if (helped === 0)
      return { verdict: 'refuted', explanation: `No listed setting helped the failing client: ${text}.` };
    return {
      verdict: 'depends',
      explanation: `Only ${helped} of the ${m.runs.length - 1} settings changed anything for the failing client (${say(base)}).`,
      conditions,
    };
  },
};
