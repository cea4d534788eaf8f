/**
 * S1-07: can another socket bind the same port on a specific address while a server listens on
 * the wildcard, and so take its connections? A server listens on 0.0.0.0:P; an "intruder" tries
 * to bind the host's own address:P and listen, for each combination of SO_REUSEADDR on the two
 * (and, for comparison, SO_REUSEPORT on both). When it gets in, a client connects to address:P
 * and we record which socket accepted it.
 */
import type { Claim, Judgement } from '../types.js';
import type { Sandbox } from '../../sandbox/types.js';
import { tcp } from '../probes/remote.js';

export interface InterceptOutcome {
  option: 'SO_REUSEADDR' | 'SO_REUSEPORT';
  server: boolean;
  intruder: boolean;
  /** The intruder's bind (then listen): "ok" or errno. */
  intruderBind: string;
  /** Who accepted a client's connection to the specific address: intruder, server, none. */
  acceptedBy: 'intruder' | 'server' | 'none' | 'not tried';
}

export interface S1_07Measured {
  combos: InterceptOutcome[];
}

async function tryIntercept(
  sb: Sandbox,
  port: number,
  option: InterceptOutcome['option'],
  server: boolean,
  intruder: boolean,
): Promise<InterceptOutcome> {
  const s = tcp(sb.server);
  const c = tcp(sb.client);
  const opt = (on: boolean): { reuseAddr?: boolean; reusePort?: boolean } =>
    option === 'SO_REUSEADDR' ? { reuseAddr: on } : { reusePort: on, reuseAddr: false };
  const l = await s.listener({ ...opt(server), address: '0.0.0.0', port });
  if (!l.ok) throw new Error(`wildcard listen on ${port}: ${l.errno}`);
  const i = await s.listener({ ...opt(intruder), address: sb.server.address, port });
  const base = { option, server, intruder, intruderBind: i.ok ? 'ok' : `${i.errno} at ${i.step}` };
  try {
    if (!i.ok) return { ...base, acceptedBy: 'not tried' };
    const d = await c.dial({ address: sb.server.address, port });
    if (!d.ok) throw new Error(`connect to ${sb.server.address}:${port}: ${d.errno}`);
    const [byIntruder, byServer] = await Promise.all([
      s.accept({ fd: i.fd, timeoutMs: 500 }),
      s.accept({ fd: l.fd, timeoutMs: 500 }),
    ]);
    for (const fd of [d.fd, byIntruder.fd, byServer.fd])
      if (fd >= 0) await c.close({ fd }).catch(() => undefined);
    return { ...base, acceptedBy: byIntruder.ok ? 'intruder' : byServer.ok ? 'server' : 'none' };
  } finally {
    await s.close({ fd: l.fd });
    if (i.fd >= 0) await s.close({ fd: i.fd });
  }
}

export const claim: Claim<S1_07Measured> = {
  id: 'S1-07',
  claim:
    'With SO_REUSEADDR another process can bind the same port on a specific address while a server listens on the wildcard address, and intercept its connections.',
  source: {
    seed: '001_f645a441ee13af30.txt',
    where: 'English article, "SO_REUSEADDR" (security stigma)',
    quote:
      'another malicious user on the local machine can bind to local-machine.8080, which will intercept all of your connections',
  },
  estimateMs: 4000,
  async run(ctx) {
    const sb = await ctx.sandbox({ hosts: 2 });
    const combos: InterceptOutcome[] = [];
    let port = 5071;
    for (const [server, intruder] of [
      [false, false],
      [false, true],
      [true, false],
      [true, true],
    ] as const) {
      ctx.progress(`SO_REUSEADDR server=${server} intruder=${intruder}`);
      combos.push(await tryIntercept(sb, port++, 'SO_REUSEADDR', server, intruder));
    }
    combos.push(await tryIntercept(sb, port, 'SO_REUSEPORT', true, true));
    return { combos };
  },
  judge(m): Judgement {
    const say = (o: InterceptOutcome): string =>
      `${o.option} server=${o.server ? 'on' : 'off'} intruder=${o.intruder ? 'on' : 'off'}: bind ${o.intruderBind}` +
      (o.acceptedBy === 'not tried' ? '' : `, connection taken by the ${o.acceptedBy}`);
    const viaReuseAddr = m.combos.filter((o) => o.option === 'SO_REUSEADDR' && o.acceptedBy === 'intruder');
    const viaReusePort = m.combos.filter((o) => o.option === 'SO_REUSEPORT' && o.acceptedBy === 'intruder');
    const text = m.combos.map(say).join('; ');
    if (viaReuseAddr.length > 0)
      return { verdict: 'confirmed', explanation: `The specific bind intercepted: ${text}.` };
    return {
      verdict: 'refuted',
      explanation:
        `No SO_REUSEADDR combination let a specific-address socket bind next to a wildcard listener: ${text}.` +
        (viaReusePort.length
          ? ' SO_REUSEPORT (same user) does allow it, and the more specific socket gets the connections.'
          : ''),
    };
  },
};
