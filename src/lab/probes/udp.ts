/**
 * UDP in place of the seed's TCP: a fresh socket per message (socket, sendto, close), and a
 * receiver counting what arrives. Runs inside sandbox hosts via host.call.
 */
import { setImmediate as yieldNow } from 'node:timers/promises';
import type dgram from 'node:dgram';
import { errnoName } from '../../sockets/errno.js';
import { encodeSockaddr } from '../../sockets/sockaddr.js';
import { bindUdp, localAddressOf, openSocket } from '../../sockets/socket.js';
import { MSG_NOSIGNAL } from '../../sockets/constants.js';
import { lastErrno, sys } from '../../sockets/syscalls.js';

export interface UdpChurnResult {
  attempted: number;
  sent: number;
  firstError: { errno: string; syscall: string; atIteration: number } | null;
  durationMs: number;
  messagesPerSecond: number;
  localPortsUsed: number;
}

export async function udpChurn(opts: {
  to: { address: string; port: number };
  count: number;
  maxMs: number;
  payload?: string;
}): Promise<UdpChurnResult> {
  const started = Date.now();
  const payload = Buffer.from(opts.payload ?? 'foo');
  const sa = encodeSockaddr(opts.to.address, opts.to.port);
  const ports = new Set<number>();
  let sent = 0;
  let attempted = 0;
  let firstError: UdpChurnResult['firstError'] = null;
  for (let i = 0; i < opts.count && Date.now() - started < opts.maxMs; i++) {
    attempted++;
    let fd = -1;
    try {
      fd = openSocket('udp', 4, {});
      if (sys.sendto(fd, payload, payload.length, MSG_NOSIGNAL, sa, sa.length) < 0) {
        firstError = { errno: errnoName(lastErrno()), syscall: 'sendto', atIteration: i + 1 };
        break;
      }
      ports.add(localAddressOf(fd).port);
      sent++;
    } catch (err) {
      const e = err as { code?: string; syscall?: string };
      firstError = { errno: e.code ?? String(err), syscall: e.syscall ?? 'socket', atIteration: i + 1 };
      break;
    } finally {
      if (fd >= 0) sys.close(fd);
    }
    // Pace a little so the receiver's buffer is not what limits the count.
    if (i % 32 === 31) await yieldNow();
  }
  const durationMs = Date.now() - started;
  return {
    attempted,
    sent,
    firstError,
    durationMs,
    messagesPerSecond: sent / Math.max(0.001, durationMs / 1000),
    localPortsUsed: ports.size,
  };
}

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
