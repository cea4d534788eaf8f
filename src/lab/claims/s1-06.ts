/**
 * S1-06: with SO_REUSEADDR a local port held in TIME_WAIT can be bound again, but not used to
 * connect to the same remote address and port. The client binds a fixed port (SO_REUSEADDR on),
 * connects, closes first (TIME_WAIT on that port), then binds it again and connects to the same
 * remote and to another one. Measured with tcp_tw_reuse 0 and 1 (two hosts, so the loopback-only
 * default 2 does not apply), after the TIME_WAIT is older than the 1 s that tw_reuse requires, and
 * with tcp_timestamps off, since a TIME_WAIT without timestamps can never be reused.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Claim, Judgement } from '../types.js';
import type { Sandbox } from '../../sandbox/types.js';
import { closeInOrder } from '../probes/scenarios.js';
import { tcp, statesOf } from '../probes/remote.js';

export interface ReconnectOutcome {
  tcpTwReuse: number;
  tcpTimestamps: number;
  /** The connection's state on the client's fixed port before the second bind. */
  stateBefore: string[];
  /** bind() of the same local port with SO_REUSEADDR: "ok" or errno. */
  rebind: string;
  /** connect() from it to the same remote address and port: "ok" or errno. */
  connectSameRemote: string;
  /** connect() from the same local port (fresh socket) to another port on the same server. */
  connectOtherRemote: string;
  /** Age of the TIME_WAIT socket when the connects were tried, ms. */
  timeWaitAgeMs: number;
}

export interface S1_06Measured {
  runs: ReconnectOutcome[];
}

const CLIENT_PORT = 40_606;
const PORT = 5061;
const OTHER_PORT = 5062;
const WAIT_MS = 1500;

async function measure(sb: Sandbox, tcpTwReuse: number, timestamps: number): Promise<ReconnectOutcome> {
  const c = tcp(sb.client);
  const s = tcp(sb.server);
  const other = await s.listener({ address: '0.0.0.0', port: OTHER_PORT, reuseAddr: true });
  if (!other.ok) throw new Error(`listen on ${OTHER_PORT}: ${other.errno}`);
  const fixed = { reuseAddr: true, bind: { address: '0.0.0.0', port: CLIENT_PORT } };
  await closeInOrder(sb, PORT, 'client', { client: fixed, keepListener: true });
  const closedAt = Date.now();
  const stateBefore = await statesOf(sb.client, CLIENT_PORT, PORT);
  await sleep(WAIT_MS);
  const again = await c.open(fixed);
  const rebind = again.ok ? 'ok' : (again.errno ?? 'error');
  let connectSameRemote = 'not tried (bind failed)';
  const timeWaitAgeMs = Date.now() - closedAt;
  if (again.ok) {
    const r = await c.connect({ fd: again.fd, address: sb.server.address, port: PORT, timeoutMs: 2000 });
    connectSameRemote = r.ok ? 'ok' : (r.errno ?? 'error');
  }
  if (again.fd >= 0) await c.close({ fd: again.fd });
  const o = await c.dial({ ...fixed, address: sb.server.address, port: OTHER_PORT, timeoutMs: 2000 });
  const connectOtherRemote = o.ok ? 'ok' : `${o.errno} at ${o.step}`;
  if (o.fd >= 0) await c.close({ fd: o.fd });
  return {
    tcpTwReuse,
    tcpTimestamps: timestamps,
    stateBefore,
    rebind,
    connectSameRemote,
    connectOtherRemote,
    timeWaitAgeMs,
  };
}

export const claim: Claim<S1_06Measured> = {
  id: 'S1-06',
  claim:
    'With SO_REUSEADDR a local port in TIME_WAIT can be bound again, but not used to connect to the same remote address and port.',
  source: {
    seed: '001_f645a441ee13af30.txt',
    where: 'English article, "SO_REUSEADDR"',
    quote: 'I can reuse local port 1010 right away to connect to anywhere except for foobar.com port 300.',
  },
  estimateMs: 5000,
  async run(ctx) {
    ctx.progress('tcp_tw_reuse 0 and 1, tcp_timestamps 1 and 0');
    const settings = [
      { tcp_tw_reuse: 0, tcp_timestamps: 1 },
      { tcp_tw_reuse: 1, tcp_timestamps: 1 },
      { tcp_tw_reuse: 0, tcp_timestamps: 0 },
    ];
    const sbs = await Promise.all(settings.map((sysctls) => ctx.sandbox({ hosts: 2, sysctls })));
    const runs = await Promise.all(
      sbs.map((sb, i) => measure(sb, settings[i]!.tcp_tw_reuse, settings[i]!.tcp_timestamps)),
    );
    return { runs };
  },
  judge(m): Judgement {
    const holds = (r: ReconnectOutcome): boolean =>
      r.rebind === 'ok' && r.connectSameRemote !== 'ok' && r.connectOtherRemote === 'ok';
    const say = (r: ReconnectOutcome): string =>
      `tcp_tw_reuse=${r.tcpTwReuse} tcp_timestamps=${r.tcpTimestamps}: re-bind ${r.rebind}, connect to the same remote ${r.connectSameRemote}, to another ${r.connectOtherRemote}`;
    const text = m.runs.map(say).join('; ');
    if (m.runs.some((r) => !r.stateBefore.includes('TIME_WAIT'))) {
      return {
        verdict: 'not-tested',
        explanation: `The fixed port was not in TIME_WAIT before the re-bind: ${text}.`,
      };
    }
    const ok = m.runs.filter(holds);
    if (ok.length === m.runs.length) return { verdict: 'confirmed', explanation: `${text}.` };
    if (ok.length === 0) return { verdict: 'refuted', explanation: `${text}.` };
    return {
      verdict: 'depends',
      explanation: `${text}. Whether an explicitly bound port in TIME_WAIT can reconnect to the same remote depends on the settings measured.`,
      conditions: m.runs.map((r) => `${say(r)} → ${holds(r) ? 'claim holds' : 'claim fails'}`),
    };
  },
};
