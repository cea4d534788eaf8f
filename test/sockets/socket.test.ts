/**
 * Sockets made by twlab and handed to Node, exercised against the kernel inside sandbox hosts:
 * connect failures name the errno and the syscall, bind-before-connect options act as the kernel
 * documents, tryBind reports EADDRINUSE without throwing.
 */
import { expect, it } from 'vitest';
import { describeNs } from '../helpers/sandbox.js';
import { withSandbox } from '../../src/sandbox/index.js';
import type { SandboxHost } from '../../src/sandbox/types.js';
import { remote, remoteModule } from '../../src/sandbox/remote.js';
import type * as Socket from '../../src/sockets/socket.js';
import type { BindResult, TryBindOptions } from '../../src/sockets/socket.js';
import { SERVER, SERVER_CLIENT } from '../../src/traffic/remote.js';
import type { RequestOnceOptions, RequestOnceResult } from '../../src/traffic/server-client.js';
import type { ServerEvent, ServerOptions, ServerSummary } from '../../src/traffic/server-types.js';

const SOCKET = remoteModule<typeof Socket>('sockets/socket.js');

const PORT = 9000;

function request(host: SandboxHost, opts: RequestOnceOptions): Promise<RequestOnceResult> {
  return remote(host, SERVER_CLIENT).requestOnce(opts);
}

function tryBind(host: SandboxHost, opts: TryBindOptions): Promise<BindResult> {
  return remote(host, SOCKET).tryBind(opts);
}

/** runServer inside a host; resolves once it listens, with its end as a promise. */
async function server(
  host: SandboxHost,
  opts: Omit<ServerOptions, 'address' | 'port'>,
  port = PORT,
): Promise<{ done: Promise<ServerSummary>; events: ServerEvent[] }> {
  const events: ServerEvent[] = [];
  let listening: () => void = () => {};
  const up = new Promise<void>((r) => (listening = r));
  const done = remote(host, SERVER, (e) => {
    events.push(e);
    if (e.event === 'listening') listening();
  }).runServer({ address: host.address, port, ...opts });
  await Promise.race([up, done]);
  return { done, events };
}

describeNs('connectTcp in a sandbox', () => {
  it('ECONNREFUSED names connect; a bad local bind names bind (EADDRNOTAVAIL)', async () => {
    await withSandbox({ hosts: 2 }, async (box) => {
      const refused = await request(box.client, {
        to: { address: box.server.address, port: PORT },
        close: 'rst',
      });
      expect(refused.error).toEqual({ errno: 'ECONNREFUSED', code: 111, syscall: 'connect' });
      const foreign = await request(box.client, {
        to: { address: box.server.address, port: PORT },
        bind: { address: box.server.address, port: 0 },
        close: 'rst',
      });
      expect(foreign.error).toEqual({ errno: 'EADDRNOTAVAIL', code: 99, syscall: 'bind' });
    });
  });

  it('IP_LOCAL_PORT_RANGE pins the local port; with it held in TIME_WAIT (tw_reuse=0) the next connect fails EADDRNOTAVAIL', async () => {
    await withSandbox({ hosts: 2, sysctls: { tcp_tw_reuse: 0 } }, async (box) => {
      const srv = await server(box.server, { exitAfter: 1 });
      const to = { address: box.server.address, port: PORT };
      const first = await request(box.client, {
        to,
        localPortRange: { low: 40123, high: 40123 },
        close: 'client-first',
      });
      expect(first.error).toBeNull();
      expect(first.localPort).toBe(40123);
      await srv.done;
      const second = await request(box.client, {
        to,
        localPortRange: { low: 40123, high: 40123 },
        close: 'client-first',
      });
      expect(second.error).toEqual({ errno: 'EADDRNOTAVAIL', code: 99, syscall: 'connect' });
    });
  });

  it('IP_BIND_ADDRESS_NO_PORT: with the only port in TIME_WAIT, bind(ip, 0) fails EADDRINUSE, but bind-no-port + connect to another destination shares it', async () => {
    await withSandbox({ hosts: 2, portRange: { low: 45000, high: 45000 } }, async (box) => {
      const srv = await server(box.server, { exitAfter: 1 });
      const other = await server(box.server, { exitAfter: 1 }, PORT + 1);
      const bind = { address: box.client.address, port: 0 };
      // The client closes first: it holds TIME_WAIT on 45000 -> server:PORT.
      const first = await request(box.client, {
        to: { address: box.server.address, port: PORT },
        close: 'client-first',
      });
      expect(first).toMatchObject({ error: null, localPort: 45000 });
      await srv.done;
      const to = { address: box.server.address, port: PORT + 1 };
      const plain = await request(box.client, { to, bind, close: 'client-first' });
      expect(plain.error).toEqual({ errno: 'EADDRINUSE', code: 98, syscall: 'bind' });
      const noPort = await request(box.client, { to, bind, bindNoPort: true, close: 'client-first' });
      expect(noPort).toMatchObject({ error: null, localPort: 45000 });
      await other.done;
    });
  });
});

describeNs('tryBind in a sandbox', () => {
  it('EADDRINUSE against a listener, regardless of SO_REUSEADDR; free once it is gone', async () => {
    await withSandbox({ hosts: 1 }, async (box) => {
      const host = box.server;
      const at = { address: host.address, port: PORT };
      expect(await tryBind(host, at)).toEqual({ ok: true, address: host.address, port: PORT });
      const srv = await server(host, { durationMs: 3000 });
      expect(await tryBind(host, { ...at, reuseAddr: true })).toEqual({
        ok: false,
        errno: 'EADDRINUSE',
        code: 98,
        syscall: 'bind',
      });
      expect(await tryBind(host, { ...at, reuseAddr: false })).toMatchObject({
        ok: false,
        errno: 'EADDRINUSE',
      });
      // UDP has its own port space.
      expect(await tryBind(host, { ...at, protocol: 'udp' })).toMatchObject({ ok: true, port: PORT });
      // Port 0: the kernel picks one and tryBind says which.
      const any = await tryBind(host, { address: host.address, port: 0 });
      expect(any.ok && any.port > 0).toBe(true);
      await srv.done;
      expect(await tryBind(host, at)).toMatchObject({ ok: true });
    });
  });

  it('SO_REUSEPORT on both: a second listener binds and listens on the same port', async () => {
    await withSandbox({ hosts: 1 }, async (box) => {
      const host = box.server;
      const srv = await server(host, { durationMs: 3000, reusePort: true });
      expect(
        await tryBind(host, { address: host.address, port: PORT, reusePort: true, listen: true }),
      ).toMatchObject({
        ok: true,
      });
      expect(await tryBind(host, { address: host.address, port: PORT, listen: true })).toMatchObject({
        ok: false,
        errno: 'EADDRINUSE',
      });
      await srv.done;
    });
  });
});
