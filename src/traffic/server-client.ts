/**
 * One request to a server, closed exactly one way: the small, fully controlled client that tests
 * and lab experiments run inside a sandbox host (`remote(host, SERVER_CLIENT)
 * .requestOnce(opts)`) to put TIME_WAIT on a chosen side. The churn client is for volume;
 * this is for one connection whose every step is known.
 */
import type net from 'node:net';
import { connectTcp, type Endpoint } from '../sockets/socket.js';
import { ETIMEDOUT, failure, failureOf, type Failure } from '../sockets/errno.js';
import { setLinger, type SocketOptions } from '../sockets/options.js';
import { frame } from './server-framing.js';

/**
 * wait-eof: send, read until the server's FIN, then close (the server closed first).
 * client-first: send, (await the reply), then shutdown(SHUT_WR) and close (the client closes first).
 * rst: send, (await the reply), then SO_LINGER {1,0} and close: an RST, no TIME_WAIT.
 */
export type RequestClose = 'wait-eof' | 'client-first' | 'rst';

export interface RequestOnceOptions extends SocketOptions {
  to: Endpoint;
  /** Default "foo", as the seed's client. */
  payload?: string;
  /** Send it as one length-prefixed message. */
  framed?: boolean;
  close: RequestClose;
  /** client-first/rst: wait until this many reply bytes have arrived before closing. Default 0. */
  awaitReplyBytes?: number;
  /** Whole exchange bound; default 10 000 ms. */
  timeoutMs?: number;
}

export interface RequestOnceResult {
  localAddress: string;
  localPort: number;
  /** What the server sent (utf8). */
  reply: string;
  /** The server's FIN was seen. */
  sawEof: boolean;
  /** The first failure, named as the kernel named it; null if none. */
  error: Failure | null;
}

export async function requestOnce(opts: RequestOnceOptions): Promise<RequestOnceResult> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const result: RequestOnceResult = { localAddress: '', localPort: 0, reply: '', sawEof: false, error: null };
  let socket: net.Socket;
  try {
    socket = await connectTcp({ ...opts, timeoutMs });
  } catch (err) {
    result.error = failureOf(err);
    return result;
  }
  result.localAddress = socket.localAddress ?? '';
  result.localPort = socket.localPort ?? 0;
  const wantReply = opts.awaitReplyBytes ?? 0;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      result.error ??= failure('recv', ETIMEDOUT);
      socket.destroy();
    }, timeoutMs);
    let closing = false;
    const closeNow = (): void => {
      if (closing) return;
      closing = true;
      if (opts.close === 'rst') {
        setLinger(socket, 0);
        socket.destroy();
      } else if (opts.close === 'client-first') socket.end();
    };
    socket.on('data', (d: Buffer) => {
      result.reply += d.toString('utf8');
      if (opts.close !== 'wait-eof' && Buffer.byteLength(result.reply) >= wantReply) closeNow();
    });
    socket.on('end', () => {
      result.sawEof = true;
      if (opts.close === 'wait-eof') socket.end();
    });
    socket.on('error', (err) => (result.error ??= failureOf(err)));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve();
    });
    const body = Buffer.from(opts.payload ?? 'foo');
    socket.write(opts.framed ? frame(body) : body, () => {
      if (opts.close !== 'wait-eof' && wantReply === 0) closeNow();
    });
  });
  return result;
}
