/**
 * S2-03: TIME_WAIT appears only after a connection was established; a socket that was only bound
 * leaves none. Four sockets on four ports of the client host, each closed after: bind only;
 * bind + listen; bind + a refused connect; bind + an established connection closed first. After
 * each, the port's sockets and a plain re-bind (no SO_REUSEADDR).
 */
import type { Claim, Judgement } from '../types.js';
import type { Sandbox } from '../../sandbox/types.js';
import { tcp, rowsOn } from '../probes/remote.js';
import { closeInOrder } from '../probes/scenarios.js';

export interface LifeOutcome {
  life: 'bound only' | 'bound and listened' | 'connect refused' | 'established, closed first';
  /** States left on the port after close. */
  statesAfter: string[];
  /** A plain bind of the port afterwards: "ok" or errno. */
  rebind: string;
}

export interface S2_03Measured {
  lives: LifeOutcome[];
}

async function afterLife(sb: Sandbox, port: number, life: LifeOutcome['life']): Promise<LifeOutcome> {
  const c = tcp(sb.client);
  const bind = { address: '0.0.0.0', port };
  if (life === 'established, closed first') {
    await closeInOrder(sb, 5239, 'client', { client: { bind } });
  } else {
    const o = await c.open({ reuseAddr: false, bind });
    if (!o.ok) throw new Error(`bind ${port}: ${o.errno}`);
    if (life === 'bound and listened') await c.listen({ fd: o.fd, backlog: 4 });
    if (life === 'connect refused') {
      const r = await c.connect({ fd: o.fd, address: sb.server.address, port: 5299, timeoutMs: 2000 });
      if (r.ok) throw new Error('the connect to a port with no listener succeeded');
    }
    await c.close({ fd: o.fd });
  }
  const statesAfter = (await rowsOn(sb.client, port)).map((r) => r.state);
  const again = await c.open({ reuseAddr: false, bind });
  if (again.fd >= 0) await c.close({ fd: again.fd });
  return { life, statesAfter, rebind: again.ok ? 'ok' : (again.errno ?? 'error') };
}

export const claim: Claim<S2_03Measured> = {
  id: 'S2-03',
  claim:
    'TIME_WAIT appears only after a connection was established; a socket that was only bound leaves none.',
  source: {
    seed: '002_2dbb6b03cd31f3e6.txt',
    where: 'fourth bullet',
    quote:
      '必须是要在 accept 或 connect 成功返回后(即连接成功后)断连或终止程序,才会有 TIME_WAIT ;仅仅 bind 但未连接成功,终止程序后是不会 TIME_WAIT 的',
  },
  estimateMs: 3000,
  async run(ctx) {
    const sb = await ctx.sandbox({ hosts: 2 });
    const lives: LifeOutcome[] = [];
    let port = 40_631;
    for (const life of [
      'bound only',
      'bound and listened',
      'connect refused',
      'established, closed first',
    ] as const) {
      ctx.progress(life);
      lives.push(await afterLife(sb, port++, life));
    }
    return { lives };
  },
  judge(m): Judgement {
    const say = (l: LifeOutcome): string =>
      `${l.life}: ${l.statesAfter.join('+') || 'nothing left'}, re-bind ${l.rebind}`;
    const text = m.lives.map(say).join('; ');
    const est = m.lives.find((l) => l.life === 'established, closed first');
    const others = m.lives.filter((l) => l !== est);
    const othersClean = others.every((l) => !l.statesAfter.includes('TIME_WAIT') && l.rebind === 'ok');
    const estTw = est !== undefined && est.statesAfter.includes('TIME_WAIT');
    if (othersClean && estTw) return { verdict: 'confirmed', explanation: `${text}.` };
    return { verdict: 'refuted', explanation: `${text}.` };
  },
};
