/**
 * S2-02: without SO_REUSEADDR, a server that closed first cannot bind its port again until
 * TIME_WAIT ends. The server closes first, then retries bind() without SO_REUSEADDR every 250 ms
 * (bounded at 75 s); the kernel's TIME_WAIT timer at the start is the prediction.
 */
import type { Claim, Judgement, Series } from '../types.js';
import { closeInOrder } from '../probes/scenarios.js';
import { tcp, rowsOn, pollFor } from '../probes/remote.js';

export interface S2_02Measured {
  /** The first bind right after the close: "ok" or errno. */
  firstBind: string;
  /** The kernel's TIME_WAIT timer on the port right after the close, ms. */
  timerAtCloseMs: number | null;
  /** When a plain bind first succeeded, ms after the close (null: not within the bound). */
  bindOkAfterMs: number | null;
  /** TIME_WAIT sockets on the port at that moment. */
  timeWaitAtSuccess: number | null;
  attempts: number;
  boundMs: number;
  /** [ms since close, TIME_WAIT sockets on the port], one sample per 5 s. */
  samples: Array<[number, number]>;
}

const PORT = 5221;
const BOUND_MS = 75_000;
/** One sample every 5 s is enough for the chart and keeps the evidence short. */
const SAMPLE_MS = 5000;

export const claim: Claim<S2_02Measured> = {
  id: 'S2-02',
  claim: 'Without SO_REUSEADDR, a server that closed first cannot bind its port again until TIME_WAIT ends.',
  source: {
    seed: '002_2dbb6b03cd31f3e6.txt',
    where: 'third bullet and the first experiment',
    quote: '如不开启 SO_REUSEADDR,服务器端主动断开连接,则必须等待 TIME_WAIT 后才可重新 bind 该端口',
  },
  estimateMs: 62_000,
  async run(ctx) {
    const sb = await ctx.sandbox({ hosts: 2 });
    const s = tcp(sb.server);
    await closeInOrder(sb, PORT, 'server', { listener: { reuseAddr: false } });
    const closedAt = Date.now();
    const tw = await rowsOn(sb.server, PORT, 'TIME_WAIT');
    const timerAtCloseMs = tw.length ? Math.max(...tw.map((r) => r.timerLeftMs ?? 0)) : null;
    let attempts = 0;
    let firstBind: string | undefined;
    const samples: Array<[number, number]> = [];
    let reported = 0;
    const success = await pollFor(
      async () => {
        attempts++;
        const b = await s.open({ reuseAddr: false, bind: { address: '0.0.0.0', port: PORT } });
        if (b.fd >= 0) await s.close({ fd: b.fd });
        const t = Date.now() - closedAt;
        firstBind ??= b.ok ? 'ok' : (b.errno ?? 'error');
        const twNow = (await rowsOn(sb.server, PORT, 'TIME_WAIT')).length;
        if (samples.length === 0 || t - samples.at(-1)![0] >= SAMPLE_MS) samples.push([t, twNow]);
        if (t - reported > 5000) {
          reported = t;
          ctx.progress(`bind still ${b.errno ?? 'ok'} after ${Math.round(t / 1000)} s`);
        }
        return b.ok ? { t, twNow } : undefined;
      },
      BOUND_MS,
      250,
    );
    return {
      firstBind: firstBind ?? 'not tried',
      timerAtCloseMs,
      bindOkAfterMs: success?.t ?? null,
      timeWaitAtSuccess: success?.twNow ?? null,
      attempts,
      boundMs: BOUND_MS,
      samples,
    };
  },
  judge(m): Judgement {
    const s = (ms: number | null): string => (ms === null ? '-' : `${(ms / 1000).toFixed(1)} s`);
    const text =
      `first bind ${m.firstBind}; the kernel's TIME_WAIT timer said ${s(m.timerAtCloseMs)}; a plain bind ` +
      (m.bindOkAfterMs === null
        ? `still failed after ${s(m.boundMs)} (${m.attempts} tries)`
        : `first succeeded after ${s(m.bindOkAfterMs)} (${m.attempts} tries), with ${m.timeWaitAtSuccess} TIME_WAIT left`);
    if (m.timerAtCloseMs === null)
      return { verdict: 'not-tested', explanation: `No TIME_WAIT on the port: ${text}.` };
    if (m.firstBind === 'ok')
      return { verdict: 'refuted', explanation: `The port could be bound at once: ${text}.` };
    if (m.bindOkAfterMs !== null && m.timeWaitAtSuccess === 0)
      return { verdict: 'confirmed', explanation: `${text}.` };
    if (m.bindOkAfterMs === null) {
      return {
        verdict: 'refuted',
        explanation: `The bind failed even after the TIME_WAIT timer ran out: ${text}.`,
      };
    }
    return { verdict: 'refuted', explanation: `The bind succeeded while TIME_WAIT remained: ${text}.` };
  },
  series(m): Series[] {
    return [{ name: 'TIME_WAIT sockets on the port', unit: 'sockets', points: m.samples }];
  },
};
