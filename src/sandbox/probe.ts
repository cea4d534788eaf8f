/**
 * Small functions run inside a host through `call`/`remote()`, for the sandbox's own tests:
 * they exercise the channel (events, errors) and the network between hosts with real sockets.
 * Every one is bounded in time.
 */
import { createConnection, createServer } from 'node:net';
import { readlinkSync } from 'node:fs';

type Emit = (event: unknown) => void;

/** Emits each value as an event (when the caller listens), then returns where it ran. */
export function echo(values: unknown[], emit?: Emit): { values: unknown[]; netns: string } {
  for (const v of values) emit?.(v);
  return { values, netns: readlinkSync('/proc/self/ns/net') };
}

/** Fails like a Node system call does, with code, errno and syscall. */
export function fail(code: string, errno: number, syscall: string): never {
  const err = new Error(`${syscall} ${code}`) as NodeJS.ErrnoException;
  err.code = code;
  err.errno = errno;
  err.syscall = syscall;
  throw err;
}

/** Listen on host:port, report 'listening', accept one connection, report its peer, close. */
export function acceptOne(
  host: string,
  port: number,
  timeoutMs: number,
  emit?: Emit,
): Promise<{ remoteAddress: string; remotePort: number; localAddress: string }> {
  return new Promise((resolve, reject) => {
    const server = createServer((sock) => {
      clearTimeout(timer);
      const info = {
        remoteAddress: sock.remoteAddress ?? '',
        remotePort: sock.remotePort ?? 0,
        localAddress: sock.localAddress ?? '',
      };
      sock.destroy();
      server.close();
      resolve(info);
    });
    const timer = setTimeout(() => {
      server.close();
      reject(
        Object.assign(new Error(`acceptOne: no connection within ${timeoutMs} ms`), { code: 'ETIMEDOUT' }),
      );
    }, timeoutMs);
    server.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    server.listen(port, host, () => emit?.({ listening: port }));
  });
}

/** Connect to host:port and close; resolves with the local address used, rejects with the errno. */
export function connectOnce(
  host: string,
  port: number,
  timeoutMs: number,
): Promise<{ localAddress: string; localPort: number }> {
  return new Promise((resolve, reject) => {
    const sock = createConnection({ host, port });
    sock.setTimeout(timeoutMs, () => {
      sock.destroy();
      reject(
        Object.assign(new Error(`connect ${host}:${port}: timed out after ${timeoutMs} ms`), {
          code: 'ETIMEDOUT',
        }),
      );
    });
    sock.on('connect', () => {
      const info = { localAddress: sock.localAddress ?? '', localPort: sock.localPort ?? 0 };
      sock.end();
      resolve(info);
    });
    sock.on('error', reject);
  });
}

/** The type of each argument it was called with: shows what the agent passed after the caller's. */
export function argTypes(...args: unknown[]): string[] {
  return args.map((a) => typeof a);
}

/** A result JSON cannot carry: the call must fail, the agent must live on. */
export function unserialisable(): bigint {
  return 1n;
}

/** Throws outside the call's promise, after it resolved: the agent must live on. */
export function throwLater(ms: number): string {
  setTimeout(() => {
    throw new Error('thrown later, outside any call');
  }, ms);
  return 'scheduled';
}
