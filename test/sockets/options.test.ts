/**
 * Socket options read back from the kernel (getsockopt), on real sockets. These make a few
 * loopback sockets and at most one connection; the connect/close behaviour is tested in sandboxes.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  applySocketOptions,
  closeFd,
  fdOf,
  getLinger,
  listenTcp,
  openSocket,
  parseLinger,
  readSocketOptions,
  setLinger,
  bindUdp,
  connectTcp,
} from '../../src/sockets/index.js';
import { RunError, UsageError } from '../../src/common/errors.js';

const open: number[] = [];
const servers: net.Server[] = [];
afterEach(async () => {
  for (const fd of open.splice(0)) closeFd(fd);
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

function fresh(protocol: 'tcp' | 'udp' = 'tcp', family: 4 | 6 = 4): number {
  const fd = openSocket(protocol, family);
  open.push(fd);
  return fd;
}

describe('applySocketOptions / readSocketOptions', () => {
  it('a fresh TCP socket holds the kernel defaults', () => {
    expect(readSocketOptions(fresh())).toEqual({
      reuseAddr: false,
      reusePort: false,
      linger: 'off',
      bindNoPort: false,
      localPortRange: null,
    });
  });

  it('reads back every option that was set, then turned off again', () => {
    const fd = fresh();
    applySocketOptions(fd, {
      reuseAddr: true,
      reusePort: true,
      linger: 7,
      bindNoPort: true,
      localPortRange: { low: 40000, high: 40099 },
    });
    expect(readSocketOptions(fd)).toEqual({
      reuseAddr: true,
      reusePort: true,
      linger: 7,
      bindNoPort: true,
      localPortRange: { low: 40000, high: 40099 },
    });
    applySocketOptions(fd, { reuseAddr: false, reusePort: false, linger: 'off', bindNoPort: false });
    const back = readSocketOptions(fd);
    expect([back.reuseAddr, back.reusePort, back.linger, back.bindNoPort]).toEqual([
      false,
      false,
      'off',
      false,
    ]);
  });

  it('linger 0 is {1,0} (abortive), not off', () => {
    const fd = fresh();
    setLinger(fd, 0);
    expect(getLinger(fd)).toBe(0);
    setLinger(fd, 'off');
    expect(getLinger(fd)).toBe('off');
  });

  it('works on IPv6 and UDP sockets', () => {
    const v6 = fresh('tcp', 6);
    applySocketOptions(v6, { reuseAddr: true, bindNoPort: true });
    expect(readSocketOptions(v6)).toMatchObject({ reuseAddr: true, bindNoPort: true });
    const udp = fresh('udp');
    applySocketOptions(udp, { reusePort: true });
    expect(readSocketOptions(udp).reusePort).toBe(true);
  });

  it('the full 1-65535 range encodes as the kernel expects (high port in the high 16 bits)', () => {
    const fd = fresh();
    applySocketOptions(fd, { localPortRange: { low: 1, high: 65535 } });
    expect(readSocketOptions(fd).localPortRange).toEqual({ low: 1, high: 65535 });
  });

  it.each([
    [{ linger: -1 }, /linger/],
    [{ linger: 1.5 }, /linger/],
    [{ linger: 'on' as unknown as number }, /linger/],
    [{ localPortRange: { low: 500, high: 400 } }, /localPortRange/],
    [{ localPortRange: { low: 0, high: 400 } }, /localPortRange/],
    [{ localPortRange: { low: 1, high: 65536 } }, /localPortRange/],
  ])('rejects %j with a UsageError', (opts, message) => {
    expect(() => applySocketOptions(fresh(), opts)).toThrow(UsageError);
    expect(() => applySocketOptions(fresh(), opts)).toThrow(message);
  });

  it('a closed fd fails with a SyscallError naming the option and EBADF', () => {
    const fd = openSocket('tcp', 4);
    closeFd(fd);
    expect(() => applySocketOptions(fd, { reuseAddr: true })).toThrow(
      expect.objectContaining({
        code: 'EBADF',
        syscall: 'setsockopt',
        message: expect.stringMatching(/SO_REUSEADDR/),
      }),
    );
  });
});

describe('listeners handed to Node keep their options', () => {
  it('SO_REUSEADDR off on a listener survives server.listen({fd}) (libuv would turn it on)', () => {
    const server = listenTcp({ address: '127.0.0.1', port: 0, reuseAddr: false });
    servers.push(server);
    expect(readSocketOptions(fdOf(server)).reuseAddr).toBe(false);
  });

  it('defaults to SO_REUSEADDR on, like Node and the seed server', () => {
    const server = listenTcp({ address: '127.0.0.1', port: 0 });
    servers.push(server);
    expect(readSocketOptions(fdOf(server)).reuseAddr).toBe(true);
  });

  it('Node 20 ignores listen({reusePort}), listenTcp does not', async () => {
    const node = net.createServer();
    servers.push(node);
    await new Promise<void>((r) =>
      node.listen({ host: '127.0.0.1', port: 0, reusePort: true } as net.ListenOptions, r),
    );
    const ours = listenTcp({ address: '127.0.0.1', port: 0, reusePort: true });
    servers.push(ours);
    expect(readSocketOptions(fdOf(ours)).reusePort).toBe(true);
    // Recorded, not asserted, for Node: 22.12+ honours the flag.
    const nodeHonours = readSocketOptions(fdOf(node)).reusePort;
    expect(typeof nodeHonours).toBe('boolean');
  });

  it.each([
    [
      { linger: 5, reuseAddr: false },
      { linger: 5, reuseAddr: false, reusePort: false },
    ],
    [
      { linger: 0, reuseAddr: true, reusePort: true },
      { linger: 0, reuseAddr: true, reusePort: true },
    ],
  ])('an accepted connection inherits the listener options %j', async (opts, expected) => {
    const server = listenTcp({ address: '127.0.0.1', port: 0, ...opts });
    servers.push(server);
    const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
    const client = await connectTcp({
      to: { address: '127.0.0.1', port: (server.address() as net.AddressInfo).port },
    });
    try {
      const sock = await accepted;
      expect(readSocketOptions(fdOf(sock))).toMatchObject(expected);
      sock.destroy();
    } finally {
      client.destroy();
    }
  });

  it('setLinger works on a net.Server and fdOf refuses a socket with no fd', () => {
    const server = listenTcp({ address: '127.0.0.1', port: 0 });
    servers.push(server);
    setLinger(server, 3);
    expect(getLinger(fdOf(server))).toBe(3);
    expect(() => fdOf(new net.Socket())).toThrow(RunError);
  });

  it('UDP: libuv sets SO_REUSEADDR on an adopted fd; bindUdp puts the requested value back', async () => {
    const off = await bindUdp({ address: '127.0.0.1', port: 0 });
    const on = await bindUdp({ address: '127.0.0.1', port: 0, reuseAddr: true, reusePort: true });
    try {
      expect(readSocketOptions(fdOf(off))).toMatchObject({ reuseAddr: false, reusePort: false });
      expect(readSocketOptions(fdOf(on))).toMatchObject({ reuseAddr: true, reusePort: true });
    } finally {
      off.close();
      on.close();
    }
  });
});

describe('parseLinger', () => {
  it('accepts off, 0 and seconds', () => {
    expect(parseLinger('off')).toBe('off');
    expect(parseLinger('0')).toBe(0);
    expect(parseLinger('30')).toBe(30);
  });
  it.each(['', 'on', '-1', '1.5', '0x10', '86401', 'Off'])('rejects %j naming --linger', (bad) => {
    expect(() => parseLinger(bad)).toThrow(UsageError);
    expect(() => parseLinger(bad)).toThrow(/--linger: .* \(accepted: off, 0/);
  });
});
