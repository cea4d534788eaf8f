/**
 * N-06: tcp_tw_recycle breaks clients behind a NAT. The server host tries to set
 * net.ipv4.tcp_tw_recycle=1; then the case it broke is run anyway: two client addresses (each with
 * its own TCP timestamp clock: Linux offsets timestamps per address pair) behind one NAT address,
 * taking turns, the server closing first (so it holds TIME_WAIT and, with recycling, remembers the
 * NAT address's latest timestamp). tcp_tw_recycle dropped SYNs whose timestamp went backwards.
 */
import { CHURN } from '../../traffic/remote.js';
import { errorText } from '../harness.js';
import { COUNTERS, remote } from '../probes/remote.js';
import type { Claim, Judgement } from '../types.js';
import { FIELD, NAT_SERVER_PORT, STALL_MS, natSandbox, startNatServer } from './n-common.js';

const KEY = 'net.ipv4.tcp_tw_recycle';
const SECOND_CLIENT = '198.51.100.11';
/** Fewer than the pool's 100 ports: no NAT port is reused, so only timestamps can get in the way. */
const COUNT = 80;

export interface N06Measured {
  /** What the server's kernel did with the write: the applied value, 'not-present' or 'rejected'. */
  tcpTwRecycle: string;
  clientAddresses: string[];
  attempted: number;
  succeeded: number;
  firstError: string | null;
  stalls: number;
  /** SYNs the clients sent again. */
  synsSentAgain: number;
  /** Segments the server dropped for an old timestamp (TcpExt PAWSActive + PAWSEstab + PAWSTimewait). */
  serverPawsRejected: number;
}

function judgeN06(m: N06Measured): Judgement {
  const run = `${m.clientAddresses.length} clients behind one NAT address, server closing first: ${m.succeeded} of ${m.attempted} connections${m.firstError ? ` (${m.firstError})` : ''}, ${m.stalls} stalled over ${STALL_MS} ms, ${m.synsSentAgain} SYN(s) sent again, ${m.serverPawsRejected} segment(s) dropped by the server for an old timestamp`;
  if (m.tcpTwRecycle !== '1') {
    return {
      verdict: 'not-applicable',
      explanation: `This kernel has no ${KEY} (the write was ${m.tcpTwRecycle}): it was removed in Linux 4.12 (commit 4396e46187ca, "tcp: remove tcp_tw_recycle"), because per-connection timestamp offsets had made it break every client, not only those behind a NAT. So it breaks nothing here, and the case it broke works: ${run}. The advice still matters on kernels before 4.12.`,
      conditions: [run],
    };
  }
  const broke = m.firstError !== null || m.stalls > 0 || m.serverPawsRejected > 0;
  return broke
    ? { verdict: 'confirmed', explanation: `With ${KEY}=1 on the server: ${run}.`, conditions: [run] }
    : { verdict: 'refuted', explanation: `Even with ${KEY}=1 on the server: ${run}.`, conditions: [run] };
}

export const claim: Claim<N06Measured> = {
  id: 'N-06',
  claim: 'tcp_tw_recycle=1 on a server breaks clients that reach it through a NAT.',
  source: {
    seed: FIELD,
    where:
      'Troy Davis, "Improve Linux tcp_tw_recycle man page entry", https://troy.yort.com/improve-linux-tcp-tw-recycle-man-page-entry/',
    quote:
      'Their hosts occasionally could not establish TCP connections with a seemingly-random small set of Internet hosts. ... the remote hosts traversed NAT. My investigation eventually led to tcp_tw_recycle',
  },
  estimateMs: 6_000,
  async run(ctx) {
    const sb = await natSandbox(ctx, {}, { serverSysctls: { [KEY]: 1 } });
    const o = sb.sysctls.find((s) => s.key === KEY);
    const status = o ? (o.status === 'applied' ? (o.value ?? o.requested) : o.status) : 'not-present';
    const add = await sb.client.exec(['ip', 'addr', 'add', `${SECOND_CLIENT}/24`, 'dev', 'eth0']);
    if (add.code !== 0) throw new Error(`ip addr add ${SECOND_CLIENT} failed: ${add.stderr.trim()}`);
    await startNatServer(sb, { close: 'server-first' });
    const clientAddresses = [sb.client.address, SECOND_CLIENT];
    ctx.progress(`${COUNT} connections from 2 addresses behind one NAT address`);
    const s = await remote(sb.client, CHURN).runChurn({
      to: `${sb.server.address}:${NAT_SERVER_PORT}`,
      bind: clientAddresses.map((a) => `${a}:0`),
      count: COUNT,
      close: 'server-first',
      stopOnError: true,
      timeoutMs: 5000,
    });
    const [c, srv] = await Promise.all([
      remote(sb.client, COUNTERS).synCounters(),
      remote(sb.server, COUNTERS).synCounters(),
    ]);
    return {
      tcpTwRecycle: status,
      clientAddresses,
      attempted: s.attempted,
      succeeded: s.succeeded,
      firstError: errorText(s.firstError),
      stalls: s.stalls.count,
      synsSentAgain: c.synRetrans,
      serverPawsRejected: srv.pawsRejected,
    };
  },
  judge: judgeN06,
};
