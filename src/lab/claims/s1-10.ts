/**
 * S1-10: SO_LINGER {1,0}: close() sends RST, discards unsent data, leaves no TIME_WAIT. The server
 * does not read and has a small receive buffer, so the client's send queue holds data the server
 * never got; the client then closes with linger {1,0}. The server host captures the segments.
 */
import type { Claim, Judgement } from '../types.js';
import { TCP_RST } from '../../sockets/raw.js';
import { connectPair } from '../probes/scenarios.js';
import { tcp, raw, statesOf, pollFor } from '../probes/remote.js';

export interface S1_10Measured {
  /** Bytes the client's send() accepted. */
  clientSent: number;
  /** Bytes the server could read afterwards. */
  serverReceived: number;
  /** How the server's read ended: "EOF", an errno, or "nothing". */
  serverReadEnd: string;
  /** RST segments from the client's port captured on the server host. */
  rstSegments: number;
  /** FIN segments from the client's port captured on the server host. */
  finSegments: number;
  clientStatesAfter: string[];
}

const PORT = 5101;

export const claim: Claim<S1_10Measured> = {
  id: 'S1-10',
  claim: 'SO_LINGER {on, 0}: close() sends RST, discards unsent data, and leaves no TIME_WAIT.',
  source: {
    seed: '001_f645a441ee13af30.txt',
    where: 'Chinese part, "关于SO_LINGER" (l_onoff non-zero, l_linger 0)',
    quote: 'TCP将丢弃保留在套接口发送缓冲区中的任何数据并发送一个RST给对方 ... 这避免了TIME_WAIT状态',
  },
  estimateMs: 4000,
  async run(ctx) {
    const sb = await ctx.sandbox({ hosts: 2 });
    const c = tcp(sb.client);
    const s = tcp(sb.server);
    const cap = await raw(sb.server).capture();
    const p = await connectPair(sb, PORT, { listener: { rcvbuf: 2048 }, client: { sndbuf: 4096 } });
    ctx.progress('filling the send queue, then close with linger {1,0}');
    const filled = await c.send({ fd: p.clientFd, bytes: 4 << 20, fill: true, settleMs: 300 });
    await c.linger({ fd: p.clientFd, linger: 0 });
    await c.close({ fd: p.clientFd });
    const r = await s.read({ fd: p.serverFd, timeoutMs: 1000 });
    const segs = await raw(sb.server).segments({ fd: cap.fd, fromPort: p.clientPort, toPort: PORT });
    await raw(sb.server).closeCapture({ fd: cap.fd });
    await s.close({ fd: p.serverFd });
    await s.close({ fd: p.listenerFd });
    const clientStatesAfter =
      (await pollFor(async () => statesOf(sb.client, p.clientPort, PORT), 200, 50)) ?? [];
    return {
      clientSent: filled.sent,
      serverReceived: r.bytes,
      serverReadEnd: !r.ok ? (r.errno ?? 'error') : r.eof ? 'EOF' : 'nothing',
      rstSegments: segs.filter((x) => x.flags & TCP_RST).length,
      finSegments: segs.filter((x) => x.flags & 0x01).length,
      clientStatesAfter,
    };
  },
  judge(m): Judgement {
    const rst = m.rstSegments > 0;
    const discarded = m.serverReceived < m.clientSent;
    const noTw = !m.clientStatesAfter.includes('TIME_WAIT');
    const text =
      `client sent ${m.clientSent} B, server read ${m.serverReceived} B then ${m.serverReadEnd}; ` +
      `${m.rstSegments} RST and ${m.finSegments} FIN from the client; client side afterwards: ${m.clientStatesAfter.join('+') || 'no socket'}`;
    if (rst && discarded && noTw) return { verdict: 'confirmed', explanation: `${text}.` };
    return { verdict: 'refuted', explanation: `${text}.` };
  },
};
