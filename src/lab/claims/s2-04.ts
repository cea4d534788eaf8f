/**
 * S2-04: when bind() to the chosen port fails, the socket ends up on another, random port. The
 * seed's server ignores bind's error and calls listen(). We reproduce that: TIME_WAIT holds the
 * port (the server closed first), a new socket's bind fails, and we read where the socket is
 * after bind and after listen, twice, against the ephemeral range.
 */
import type { Claim, Judgement } from '../types.js';
import { closeInOrder } from '../probes/scenarios.js';
import { tcp } from '../probes/remote.js';

export interface IgnoredBindOutcome {
  bind: string;
  /** getsockname port after the failed bind (0: unbound). */
  portAfterBind: number | null;
  listen: string;
  portAfterListen: number | null;
}

export interface S2_04Measured {
  wantedPort: number;
  ephemeralRange: string;
  tries: IgnoredBindOutcome[];
}

const PORT = 5241;

export const claim: Claim<S2_04Measured> = {
  id: 'S2-04',
  claim: 'When bind() to the chosen port fails, the socket ends up on another, random port.',
  source: {
    seed: '002_2dbb6b03cd31f3e6.txt',
    where: 'fifth bullet and the restart experiment',
    quote: '如果 bind 指定端口不成功,则会自动 bind 其他任意端口',
  },
  estimateMs: 3000,
  async run(ctx) {
    const sb = await ctx.sandbox({ hosts: 2 });
    const s = tcp(sb.server);
    await closeInOrder(sb, PORT, 'server', { listener: { reuseAddr: false } });
    const ephemeralRange = ((await sb.server.readSysctl('net.ipv4.ip_local_port_range')) ?? '')
      .trim()
      .replace(/\s+/, '-');
    const tries: IgnoredBindOutcome[] = [];
    for (let i = 0; i < 2; i++) {
      ctx.progress(`failed bind, then listen (${i + 1}/2)`);
      const o = await s.open({ reuseAddr: false });
      const b = await s.bind({ fd: o.fd, address: '0.0.0.0', port: PORT });
      const after = await s.sockname({ fd: o.fd });
      const l = await s.listen({ fd: o.fd, backlog: 20 });
      tries.push({
        bind: b.ok ? 'ok' : (b.errno ?? 'error'),
        portAfterBind: after?.port ?? null,
        listen: l.ok ? 'ok' : (l.errno ?? 'error'),
        portAfterListen: l.local?.port ?? null,
      });
      await s.close({ fd: o.fd });
    }
    return { wantedPort: PORT, ephemeralRange, tries };
  },
  judge(m): Judgement {
    const [lo, hi] = m.ephemeralRange.split('-').map(Number) as [number, number];
    const say = (t: IgnoredBindOutcome): string =>
      `bind ${t.bind} (port then ${t.portAfterBind}), listen ${t.listen} on port ${t.portAfterListen}`;
    const text = `wanted ${m.wantedPort}, ephemeral range ${m.ephemeralRange}: ${m.tries.map(say).join('; ')}`;
    if (m.tries.some((t) => t.bind === 'ok')) {
      return { verdict: 'not-tested', explanation: `The bind did not fail, so nothing to observe: ${text}.` };
    }
    const random = m.tries.every(
      (t) =>
        t.listen === 'ok' &&
        t.portAfterListen !== null &&
        t.portAfterListen !== m.wantedPort &&
        t.portAfterListen >= lo &&
        t.portAfterListen <= hi,
    );
    const differ = new Set(m.tries.map((t) => t.portAfterListen)).size === m.tries.length;
    const unboundAfterBind = m.tries.every((t) => t.portAfterBind === 0);
    if (random && differ) {
      return {
        verdict: 'confirmed',
        explanation: `${text}.${unboundAfterBind ? ' The failed bind itself bound nothing; listen() autobinds an ephemeral port.' : ''}`,
      };
    }
    return { verdict: 'refuted', explanation: `${text}.` };
  },
};
