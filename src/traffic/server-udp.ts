/**
 * The seeds' "use UDP" fix, served: count datagrams (no connections, so no TIME_WAIT anywhere),
 * answer each with `reply` if asked. Replies in flight are bounded so a flood cannot queue
 * unbounded memory.
 */
import { bindUdp } from '../sockets/socket.js';
import { ServerCore, errnoInfo } from './server-core.js';
import type { ServerHandle, ServerSettings } from './server-types.js';

/** Replies handed to the kernel but not yet confirmed sent; beyond this, replies are skipped. */
const MAX_PENDING_REPLIES = 1024;

export async function startUdpServer(settings: ServerSettings): Promise<ServerHandle> {
  const socket = await bindUdp({
    address: settings.address,
    port: settings.port,
    reuseAddr: settings.reuseAddr,
    reusePort: settings.reusePort,
  });
  let closed = false;
  let pending = 0;
  let flushed: (() => void) | null = null;
  const core = new ServerCore(settings, () => {
    if (closed) return;
    closed = true;
    // Let replies already handed to libuv go out (the last datagram's answer), for at most 1 s.
    const shut = (): void => {
      flushed = null;
      clearTimeout(bound);
      socket.close(() => core.finish());
    };
    const bound = setTimeout(shut, 1000);
    if (pending === 0) shut();
    else flushed = shut;
  });
  const { stats } = core;
  const reply = settings.reply === null ? null : Buffer.from(settings.reply);
  const sent = (): void => {
    if (--pending === 0 && flushed) flushed();
  };

  socket.on('message', (msg, rinfo) => {
    if (closed) return;
    stats.accepted++;
    stats.messages++;
    stats.bytesReceived += msg.length;
    if (core.observed) {
      core.emit({
        event: 'received',
        t: core.now(),
        id: stats.accepted,
        bytes: msg.length,
        peer: { address: rinfo.address, port: rinfo.port },
      });
    }
    if (msg.length > settings.maxRequestBytes) {
      core.reportError(
        {
          errno: 'too-large',
          code: 0,
          syscall: 'server',
          message: `datagram of ${msg.length} bytes over ${settings.maxRequestBytes}: not answered`,
        },
        stats.accepted,
      );
    } else if (reply && pending < MAX_PENDING_REPLIES) {
      pending++;
      stats.bytesSent += reply.length;
      socket.send(reply, rinfo.port, rinfo.address, sent);
    }
    if (settings.exitAfter !== null && stats.accepted >= settings.exitAfter) core.stop('exit-after');
  });

  socket.on('error', (err: NodeJS.ErrnoException) => core.reportError(errnoInfo(err, 'recvmsg')));

  const bound = socket.address();
  core.settings = { ...settings, port: bound.port };
  return core.handle(bound, 'udp');
}
