/**
 * S2-06: even with SO_REUSEADDR the TIME_WAIT socket still exists; the option only lets bind
 * proceed. The server (SO_REUSEADDR on) closes first; a new listener binds and listens on the port
 * and serves a new connection; the old TIME_WAIT socket is looked for after each step.
 */
import type { Claim, Judgement } from '../types.js';
import { closeInOrder } from '../probes/scenarios.js';
import { tcp, rowsOn } from '../probes/remote.js';

export interface S2_06Measured {
  /** The old connection (server port, old client port) on the server: before, after bind+listen, after a new connection. */
  oldConnBefore: string[];
  listen: string;
  oldConnAfterListen: string[];
  newConnection: string;
  oldConnAfterNewConnection: string[];
  /** Its TIME_WAIT timer before and after, ms (unchanged: the re-bind did not touch it). */
  timerBeforeMs: number | null;
  timerAfterMs: number | null;
}

const PORT = 5261;

export const claim: Claim<S2_06Measured> = {
  id: 'S2-06',
  claim: 'Even with SO_REUSEADDR the TIME_WAIT socket still exists; the option only lets bind proceed.',
  source: {
    seed: '002_2dbb6b03cd31f3e6.txt',
    where: 'end of the SO_REUSEADDR experiment',
    quote: '即使将 SO_REUSEADDR 置 1,TIME_WAIT 状态也依旧存在,只是可以无视该状态直接 bind 而已',
  },
  estimateMs: 3000,
  async run(ctx) {
    const sb = await ctx.sandbox({ hosts: 2 });
    const s = tcp(sb.server);
    const c = tcp(sb.client);
    const old = await closeInOrder(sb, PORT, 'server', { listener: { reuseAddr: true } });
    const oldConn = async (): Promise<{ states: string[]; timer: number | null }> => {
      const rows = (await rowsOn(sb.server, PORT)).filter((r) => r.peer.port === old.clientPort);
      return { states: rows.map((r) => r.state), timer: rows[0]?.timerLeftMs ?? null };
    };
    const before = await oldConn();
    ctx.progress('re-bind with SO_REUSEADDR and serve a new connection');
    const l = await s.listener({ reuseAddr: true, address: '0.0.0.0', port: PORT });
    const afterListen = await oldConn();
    let newConnection = 'not tried';
    if (l.ok) {
      const d = await c.dial({ address: sb.server.address, port: PORT });
      const a = await s.accept({ fd: l.fd, timeoutMs: 2000 });
      newConnection = d.ok && a.ok ? 'ok' : `${d.errno ?? a.errno}`;
      for (const fd of [a.fd]) if (fd >= 0) await s.close({ fd });
      if (d.fd >= 0) await c.close({ fd: d.fd });
    }
    const afterNew = await oldConn();
    if (l.fd >= 0) await s.close({ fd: l.fd });
    return {
      oldConnBefore: before.states,
      listen: l.ok ? 'ok' : `${l.errno} at ${l.step}`,
      oldConnAfterListen: afterListen.states,
      newConnection,
      oldConnAfterNewConnection: afterNew.states,
      timerBeforeMs: before.timer,
      timerAfterMs: afterNew.timer,
    };
  },
  judge(m): Judgement {
    const st = (x: string[]): string => x.join('+') || 'gone';
    const text =
      `old connection ${st(m.oldConnBefore)}; re-bind+listen ${m.listen}, old connection ${st(m.oldConnAfterListen)}; ` +
      `new connection ${m.newConnection}, old connection ${st(m.oldConnAfterNewConnection)} ` +
      `(timer ${m.timerBeforeMs} → ${m.timerAfterMs} ms)`;
    if (!m.oldConnBefore.includes('TIME_WAIT'))
      return { verdict: 'not-tested', explanation: `No TIME_WAIT to begin with: ${text}.` };
    if (m.listen !== 'ok') return { verdict: 'not-tested', explanation: `The re-bind failed: ${text}.` };
    if (m.oldConnAfterListen.includes('TIME_WAIT') && m.oldConnAfterNewConnection.includes('TIME_WAIT')) {
      return { verdict: 'confirmed', explanation: `${text}.` };
    }
    return {
      verdict: 'refuted',
      explanation: `The TIME_WAIT socket went away when the port was re-bound: ${text}.`,
    };
  },
};
