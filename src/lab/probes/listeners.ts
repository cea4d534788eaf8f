/**
 * Two servers on one port: the first listens, the second tries to bind and listen with the same
 * options; when both listen, connections are counted per listener. Runs inside a sandbox host.
 */
import type net from 'node:net';
import { connect } from 'node:net';
import { listenTcp, tryBind } from '../../sockets/socket.js';
import type { SyscallError } from '../../sockets/errno.js';

export interface TwoListenersResult {
  options: { reuseAddr: boolean; reusePort: boolean };
  firstListen: string;
  secondListen: string;
  /** When both listen: connections each one accepted out of `connections`. */
  acceptedByFirst: number | null;
  acceptedBySecond: number | null;
  connections: number;
}

async function connectMany(port: number, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    await new Promise<void>((resolve) => {
      const s = connect({ host: '127.0.0.1', port }, () => s.end());
      s.on('close', () => resolve());
      s.on('error', () => resolve());
    });
  }
}

function counted(server: net.Server): { n: number } {
  const c = { n: 0 };
  server.on('connection', (s: net.Socket) => {
    c.n++;
    s.on('error', () => undefined);
    s.end();
  });
  return c;
}

export async function twoListeners(opts: {
  port: number;
  reuseAddr: boolean;
  reusePort: boolean;
  connections: number;
}): Promise<TwoListenersResult> {
  const o = { reuseAddr: opts.reuseAddr, reusePort: opts.reusePort };
  const base = { options: o, acceptedByFirst: null, acceptedBySecond: null, connections: opts.connections };
  let first: net.Server;
  try {
    first = listenTcp({ address: '0.0.0.0', port: opts.port, ...o });
  } catch (err) {
    return { ...base, firstListen: (err as SyscallError).code ?? String(err), secondListen: 'not tried' };
  }
  const firstCount = counted(first);
  // The probe: would a second instance get the port?
  const probe = tryBind({ address: '0.0.0.0', port: opts.port, listen: true, ...o });
  if (!probe.ok) {
    first.close();
    return { ...base, firstListen: 'ok', secondListen: `${probe.syscall} ${probe.errno}` };
  }
  // It would: start a real second instance and see who gets the connections.
  const second = listenTcp({ address: '0.0.0.0', port: opts.port, ...o });
  const secondCount = counted(second);
  await connectMany(opts.port, opts.connections);
  await new Promise((r) => setTimeout(r, 50));
  first.close();
  second.close();
  return {
    ...base,
    firstListen: 'ok',
    secondListen: 'ok',
    acceptedByFirst: firstCount.n,
    acceptedBySecond: secondCount.n,
  };
}
