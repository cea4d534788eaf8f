/**
 * UDP in place of the seed's TCP: the receiver, counting what arrives (the sender is the churn
 * engine, `twlab churn --udp`). Runs inside a sandbox host via host.call.
 */
import type dgram from 'node:dgram';
import { bindUdp } from '../../sockets/socket.js';

export interface UdpServerStats {
  port: number;
  datagrams: number;
  bytes: number;
  senders: number;
}

const stopRequested = new Set<number>();

/** Ask the UDP receiver on `port` to finish once nothing arrived for 50 ms. */
export async function stopUdpServe(opts: { port: number }): Promise<void> {
  stopRequested.add(opts.port);
}

export async function udpServe(
  opts: { address: string; port: number; idleMs: number; maxMs: number },
  emit: (e: unknown) => void,
): Promise<UdpServerStats> {
  const started = Date.now();
  const sock: dgram.Socket = await bindUdp({ address: opts.address, port: opts.port });
  const stats: UdpServerStats = { port: sock.address().port, datagrams: 0, bytes: 0, senders: 0 };
  const senders = new Set<string>();
  let last = Date.now();
  sock.on('message', (msg, rinfo) => {
    stats.datagrams++;
    stats.bytes += msg.length;
    senders.add(`${rinfo.address}:${rinfo.port}`);
    last = Date.now();
  });
  emit({ type: 'listening', port: stats.port });
  await new Promise<void>((resolve) => {
    const t = setInterval(() => {
      const quiet = Date.now() - last;
      const stopped = stopRequested.has(stats.port) && quiet >= 50;
      if (stopped || (stats.datagrams > 0 && quiet >= opts.idleMs) || Date.now() - started >= opts.maxMs) {
        clearInterval(t);
        resolve();
      }
    }, 20);
  });
  sock.close();
  stopRequested.delete(stats.port);
  stats.senders = senders.size;
  return stats;
}
