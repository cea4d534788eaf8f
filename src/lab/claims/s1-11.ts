/**
 * S1-11: "with SO_LINGER {1,0} the peer is not told; it sees no reset". The server (as in the
 * seed's code) closes with linger {1,0}; the client host captures what arrives, and the client
 * reads and then writes, recording what each call returns.
 */
import type { Claim, Judgement } from '../types.js';
import { TCP_RST } from '../../sockets/raw.js';
import { connectPair } from '../probes/scenarios.js';
import { tcp, raw } from '../probes/remote.js';

export interface S1_11Measured {
  /** RST segments from the server's port captured on the client host. */
  rstSegments: number;
  /** The client's read after the server closed: "EOF", "nothing" or an errno (ECONNRESET). */
  clientRead: string;
  /** The client's write after that: "ok" or an errno (EPIPE). */
  clientWrite: string;
}

const PORT = 5111;

export const claim: Claim<S1_11Measured> = {
  id: 'S1-11',
  claim: 'SO_LINGER {on, 0}: the peer is not told; it sees no reset.',
  source: {
    seed: '001_f645a441ee13af30.txt',
    where: 'Chinese part, end of "2. 禁止TIME_WAIT状态"',
    quote: '当服务器关闭套接口后,对方不会出现 peer reset而自动退出 ... 没有通知客户端',
  },
  estimateMs: 3000,
  async run(ctx) {
    const sb = await ctx.sandbox({ hosts: 2 });
    const c = tcp(sb.client);
    const s = tcp(sb.server);
    const cap = await raw(sb.client).capture();
    const p = await connectPair(sb, PORT);
    await c.send({ fd: p.clientFd, bytes: 3 });
    await s.read({ fd: p.serverFd, timeoutMs: 1000, max: 3 });
    ctx.progress('server closes with linger {1,0}');
    await s.linger({ fd: p.serverFd, linger: 0 });
    await s.close({ fd: p.serverFd });
    await s.close({ fd: p.listenerFd });
    const r = await c.read({ fd: p.clientFd, timeoutMs: 1000 });
    const w = await c.send({ fd: p.clientFd, bytes: 3 });
    const segs = await raw(sb.client).segments({ fd: cap.fd, fromPort: PORT, toPort: p.clientPort });
    await raw(sb.client).closeCapture({ fd: cap.fd });
    await c.close({ fd: p.clientFd });
    return {
      rstSegments: segs.filter((x) => x.flags & TCP_RST).length,
      clientRead: !r.ok ? (r.errno ?? 'error') : r.eof ? 'EOF' : 'nothing',
      clientWrite: w.ok ? 'ok' : (w.errno ?? 'error'),
    };
  },
  judge(m): Judgement {
    const text = `${m.rstSegments} RST reached the client; its read gave ${m.clientRead}, its write ${m.clientWrite}`;
    const told = m.rstSegments > 0 || m.clientRead === 'ECONNRESET' || m.clientWrite === 'ECONNRESET';
    if (told) return { verdict: 'refuted', explanation: `The peer is told, by a reset: ${text}.` };
    return { verdict: 'confirmed', explanation: `${text}.` };
  },
};
