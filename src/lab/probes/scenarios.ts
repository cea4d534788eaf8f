/**
 * Connection life cycles several S1/S2 experiments start from, driven from the lab through the
 * probes: open a connection, exchange a few bytes, let one side close first and the other close
 * on EOF (as the seeds' programs do), then read both sides' TCP tables.
 */
import type { Sandbox, SandboxHost } from '../../sandbox/types.js';
import type { SocketProbeOptions } from './tcp.js';
import { tcp, rowsOn, statesOf, pollFor } from './remote.js';

export interface Connected {
  listenerFd: number;
  serverFd: number;
  clientFd: number;
  clientPort: number;
  serverPort: number;
}

/** A listener on the server host (wildcard address) and one accepted connection from the client host. */
export async function connectPair(
  sb: Sandbox,
  port: number,
  opts: { listener?: SocketProbeOptions; client?: SocketProbeOptions } = {},
): Promise<Connected> {
  const s = tcp(sb.server);
  const c = tcp(sb.client);
  const l = await s.listener({ reuseAddr: false, ...opts.listener, address: '0.0.0.0', port });
  if (!l.ok) throw new Error(`listen on port ${port} failed at ${l.step}: ${l.errno}`);
  const d = await c.dial({ ...opts.client, address: sb.server.address, port });
  if (!d.ok || !d.local) throw new Error(`connect to ${sb.server.address}:${port} failed: ${d.errno}`);
  const a = await s.accept({ fd: l.fd, timeoutMs: 3000 });
  if (!a.ok) throw new Error(`accept on port ${port} failed: ${a.errno}`);
  return { listenerFd: l.fd, serverFd: a.fd, clientFd: d.fd, clientPort: d.local.port, serverPort: port };
}

export interface ClosedPair {
  clientPort: number;
  serverPort: number;
  /** The connection's states on each side once the close settled (empty: no socket left). */
  clientStates: string[];
  serverStates: string[];
}

/**
 * One connection through its whole life: exchange a few bytes, `first` closes, the other side
 * reads EOF and closes. The listener is closed too unless `keepListener`. Waits (bounded) until
 * the first closer's side leaves FIN_WAIT states.
 */
export async function closeInOrder(
  sb: Sandbox,
  port: number,
  first: 'client' | 'server',
  opts: { listener?: SocketProbeOptions; client?: SocketProbeOptions; keepListener?: boolean } = {},
): Promise<ClosedPair & { listenerFd: number }> {
  const p = await connectPair(sb, port, opts);
  const s = tcp(sb.server);
  const c = tcp(sb.client);
  await c.send({ fd: p.clientFd, bytes: 3 });
  await s.read({ fd: p.serverFd, timeoutMs: 1000, max: 3 });
  await s.send({ fd: p.serverFd, bytes: 3 });
  await c.read({ fd: p.clientFd, timeoutMs: 1000, max: 3 });
  const [closer, closerFd, other, otherFd] =
    first === 'client' ? [c, p.clientFd, s, p.serverFd] : [s, p.serverFd, c, p.clientFd];
  await closer.close({ fd: closerFd });
  const eof = await other.read({ fd: otherFd, timeoutMs: 2000 });
  if (!eof.eof)
    throw new Error(`the ${first === 'client' ? 'server' : 'client'} saw no EOF after the ${first} closed`);
  await other.close({ fd: otherFd });
  if (!opts.keepListener) await s.close({ fd: p.listenerFd });
  const closerHost = first === 'client' ? sb.client : sb.server;
  const [lp, pp] = first === 'client' ? [p.clientPort, port] : [port, p.clientPort];
  await pollFor(async () => {
    const st = await statesOf(closerHost, lp, pp);
    return st.some((x) => x.startsWith('FIN_WAIT') || x === 'CLOSING') ? undefined : true;
  }, 2000);
  return {
    clientPort: p.clientPort,
    serverPort: port,
    clientStates: await statesOf(sb.client, p.clientPort, port),
    serverStates: await statesOf(sb.server, port, p.clientPort),
    listenerFd: opts.keepListener ? p.listenerFd : -1,
  };
}

export interface RebindOutcome {
  /** TIME_WAIT sockets on the port when the bind was tried. */
  timeWaitOnPort: number;
  /** bind() without SO_REUSEADDR: "ok" or errno name. */
  bindWithout: string;
  /** bind() with SO_REUSEADDR: "ok" or errno name. */
  bindWith: string;
}

/** Try to bind `port` on `host` without and with SO_REUSEADDR (each socket closed again). */
export async function tryRebind(host: SandboxHost, port: number): Promise<RebindOutcome> {
  const t = tcp(host);
  const timeWaitOnPort = (await rowsOn(host, port, 'TIME_WAIT')).length;
  const attempt = async (reuseAddr: boolean): Promise<string> => {
    const b = await t.open({ reuseAddr, bind: { address: '0.0.0.0', port } });
    if (b.fd >= 0) await t.close({ fd: b.fd });
    return b.ok ? 'ok' : (b.errno ?? 'error');
  };
  return { timeWaitOnPort, bindWithout: await attempt(false), bindWith: await attempt(true) };
}
