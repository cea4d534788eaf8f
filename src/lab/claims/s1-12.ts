/**
 * S1-12: SO_LINGER {1,N}: close() blocks until the data is acknowledged or N seconds pass; on
 * timeout it returns EWOULDBLOCK and the data is lost. The server stops reading (small receive
 * buffer), the client fills its send queue and closes with linger {1,2} on a worker thread; we
 * time the close, take its return value and errno, then let the server read to see whether the
 * data still arrives. A control connection whose data the server reads shows close's normal time.
 */
import { SEVERAL_STEPS_BUDGET_MS } from '../runner.js';
import type { Claim, Judgement } from '../types.js';
import type { Sandbox } from '../../sandbox/types.js';
import { connectPair } from '../probes/scenarios.js';
import { tcp, statesOf } from '../probes/remote.js';

export interface LingerClose {
  /** Bytes the client's send() accepted before close. */
  sent: number;
  closeMs: number;
  closeReturn: number;
  closeErrno: string | null;
  /** The client's socket state right after close returned. */
  stateAfterClose: string[];
  /** Bytes the server read after the close, and whether the stream ended with EOF. */
  serverReceived: number;
  serverEof: boolean;
}

export interface S1_12Measured {
  lingerSeconds: number;
  /** The server did not read until close had returned. */
  peerNotReading: LingerClose;
  /** Control: the server had read everything before close. */
  peerReading: LingerClose;
}

const LINGER_S = 2;

async function lingerClose(sb: Sandbox, port: number, peerReads: boolean): Promise<LingerClose> {
  const c = tcp(sb.client);
  const s = tcp(sb.server);
  const p = await connectPair(sb, port, { listener: { rcvbuf: 2048 }, client: { sndbuf: 4096 } });
  const filled = peerReads
    ? await c.send({ fd: p.clientFd, bytes: 1000 })
    : await c.send({ fd: p.clientFd, bytes: 4 << 20, fill: true, settleMs: 300 });
  let early = 0;
  if (peerReads) early = (await s.read({ fd: p.serverFd, timeoutMs: 1000, max: filled.sent })).bytes;
  await c.linger({ fd: p.clientFd, linger: LINGER_S });
  const closed = await c.closeOffThread({ fd: p.clientFd });
  const stateAfterClose = await statesOf(sb.client, p.clientPort, port);
  const rest = await s.read({ fd: p.serverFd, timeoutMs: 5000 });
  await s.close({ fd: p.serverFd });
  await s.close({ fd: p.listenerFd });
  return {
    sent: filled.sent,
    closeMs: Math.round(closed.ms),
    closeReturn: closed.ret,
    closeErrno: closed.errno,
    stateAfterClose,
    serverReceived: early + rest.bytes,
    serverEof: rest.eof,
  };
}

export const claim: Claim<S1_12Measured> = {
  id: 'S1-12',
  claim:
    'SO_LINGER {on, N}: close() blocks until the data is acknowledged or N seconds pass; on timeout it returns EWOULDBLOCK and the data is lost.',
  source: {
    seed: '001_f645a441ee13af30.txt',
    where: 'Chinese part, "关于SO_LINGER" (l_onoff and l_linger non-zero)',
    quote: '如果在数据发送完并被确认前时间到,close将返回EWOULDBLOCK错误且套接口发送缓冲区中的任何数据都丢失',
  },
  estimateMs: 9000,
  budgetMs: SEVERAL_STEPS_BUDGET_MS,
  async run(ctx) {
    const sb = await ctx.sandbox({ hosts: 2 });
    ctx.progress(`linger {1,${LINGER_S}} with a peer that does not read`);
    const peerNotReading = await lingerClose(sb, 5121, false);
    ctx.progress('control: a peer that reads');
    const peerReading = await lingerClose(sb, 5122, true);
    return { lingerSeconds: LINGER_S, peerNotReading, peerReading };
  },
  judge(m): Judgement {
    const a = m.peerNotReading;
    const b = m.peerReading;
    const blocked = a.closeMs >= m.lingerSeconds * 1000 * 0.9 && b.closeMs < m.lingerSeconds * 500;
    const wouldBlock = a.closeReturn < 0 && (a.closeErrno === 'EAGAIN' || a.closeErrno === 'EWOULDBLOCK');
    const lost = a.serverReceived < a.sent;
    const text =
      `peer not reading: close blocked ${a.closeMs} ms and returned ${a.closeReturn}${a.closeErrno ? ` (${a.closeErrno})` : ''}, ` +
      `socket then ${a.stateAfterClose.join('+') || 'gone'}, and the server later read ${a.serverReceived} of ${a.sent} B` +
      `${a.serverEof ? ' and EOF' : ''}; peer reading: close took ${b.closeMs} ms`;
    if (blocked && wouldBlock && lost) return { verdict: 'confirmed', explanation: `${text}.` };
    const held = blocked ? 'close does block for the linger time, but ' : '';
    return {
      verdict: 'refuted',
      explanation: `${held}${wouldBlock ? '' : 'close returned no EWOULDBLOCK'}${!wouldBlock && !lost ? ' and ' : ''}${lost ? '' : 'the data was not lost'}: ${text}.`,
    };
  },
};
