/**
 * S2-01: a client that closed first can reconnect at once, with or without SO_REUSEADDR, since
 * each connect gets a new ephemeral port. The client closes first (its port goes to TIME_WAIT)
 * and connects again to the same server right away, with SO_REUSEADDR off and on.
 */
import type { Claim, Judgement } from '../types.js';
import type { Sandbox } from '../../sandbox/types.js';
import { closeInOrder } from '../probes/scenarios.js';
import { tcp } from '../probes/remote.js';

export interface ReconnectAtOnce {
  reuseAddr: boolean;
  firstPort: number;
  firstPortState: string[];
  /** The immediate reconnect: "ok" or errno, its local port, and how long after the close. */
  reconnect: string;
  secondPort: number | null;
  afterMs: number;
}

export interface S2_01Measured {
  runs: ReconnectAtOnce[];
}

async function reconnect(sb: Sandbox, port: number, reuseAddr: boolean): Promise<ReconnectAtOnce> {
  const c = tcp(sb.client);
  const first = await closeInOrder(sb, port, 'client', { client: { reuseAddr }, keepListener: true });
  const closedAt = Date.now();
  const d = await c.dial({ reuseAddr, address: sb.server.address, port });
  const afterMs = Date.now() - closedAt;
  if (d.fd >= 0) await c.close({ fd: d.fd });
  await tcp(sb.server).close({ fd: first.listenerFd });
  return {
    reuseAddr,
    firstPort: first.clientPort,
    firstPortState: first.clientStates,
    reconnect: d.ok ? 'ok' : (d.errno ?? 'error'),
    secondPort: d.local?.port ?? null,
    afterMs,
  };
}

export const claim: Claim<S2_01Measured> = {
  id: 'S2-01',
  claim:
    'With or without SO_REUSEADDR, a client that closed first can reconnect at once, since each connect gets a new ephemeral port.',
  source: {
    seed: '002_2dbb6b03cd31f3e6.txt',
    where: 'first bullet',
    quote:
      '无论是否开启 SO_REUSEADDR ,客户端主动断开连接后,无需等待 TIME_WAIT 即可重连,因为客户端每次 bind 的端口都不一样',
  },
  estimateMs: 3000,
  async run(ctx) {
    const sb = await ctx.sandbox({ hosts: 2 });
    ctx.progress('close first, reconnect at once');
    const runs = [await reconnect(sb, 5201, false), await reconnect(sb, 5202, true)];
    return { runs };
  },
  judge(m): Judgement {
    const say = (r: ReconnectAtOnce): string =>
      `SO_REUSEADDR ${r.reuseAddr ? 'on' : 'off'}: port ${r.firstPort} in ${r.firstPortState.join('+') || 'no state'}, ` +
      `reconnect after ${r.afterMs} ms ${r.reconnect} from port ${r.secondPort ?? '-'}`;
    const text = m.runs.map(say).join('; ');
    if (m.runs.some((r) => !r.firstPortState.includes('TIME_WAIT'))) {
      return { verdict: 'not-tested', explanation: `The first connection left no TIME_WAIT: ${text}.` };
    }
    const ok = m.runs.every((r) => r.reconnect === 'ok' && r.secondPort !== r.firstPort);
    if (ok) return { verdict: 'confirmed', explanation: `${text}.` };
    return { verdict: 'refuted', explanation: `${text}.` };
  },
};
