/**
 * `twlab serve` against the kernel, in sandboxes: who holds TIME_WAIT decides whether a restart
 * with SO_REUSEADDR off can bind; SO_LINGER {1,0} on the client leaves no TIME_WAIT and the
 * server sees ECONNRESET. The server runs as the real CLI inside the server host; the client is
 * connectTcp (+ SO_LINGER) called inside the client host.
 */
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { expect, it } from 'vitest';
import { describeNs } from '../helpers/sandbox.js';
import { twlabArgv } from '../../src/common/paths.js';
import { withSandbox } from '../../src/sandbox/index.js';
import { remote } from '../../src/sandbox/remote.js';
import type { SandboxHost } from '../../src/sandbox/types.js';
import { SERVER_CLIENT } from '../../src/traffic/remote.js';
import type { RequestOnceOptions, RequestOnceResult } from '../../src/traffic/server-client.js';
import type { ClosedHow, ServerEvent } from '../../src/traffic/server-types.js';

const PORT = 8080;

interface Running {
  events: ServerEvent[];
  listening: Promise<ServerEvent>;
  exited: Promise<{ code: number | null; stderr: string }>;
  child: ChildProcess;
}

/** Start `twlab serve ... --json` in a host; collect its events. `listening` rejects if it exits first. */
function serve(host: SandboxHost, args: string[], port = PORT): Running {
  const child = host.spawn(twlabArgv('serve', '--listen', `${host.address}:${port}`, '--json', ...args));
  const events: ServerEvent[] = [];
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  let onListening: (e: ServerEvent) => void = () => {};
  let onExit: (err: Error) => void = () => {};
  const listening = new Promise<ServerEvent>((resolve, reject) => {
    onListening = resolve;
    onExit = reject;
  });
  listening.catch(() => {});
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const e = JSON.parse(line) as ServerEvent;
    events.push(e);
    if (e.event === 'listening') onListening(e);
  });
  const exited = new Promise<{ code: number | null; stderr: string }>((resolve) =>
    child.on('close', (code) => {
      onExit(new Error(`twlab serve exited (${code}) before listening: ${stderr}`));
      resolve({ code, stderr });
    }),
  );
  return { events, listening, exited, child };
}

function request(host: SandboxHost, opts: RequestOnceOptions): Promise<RequestOnceResult> {
  return remote(host, SERVER_CLIENT).requestOnce(opts);
}

/** TIME-WAIT lines of `ss -tan` inside a host, optionally for one local or peer port. */
async function timeWait(host: SandboxHost, port?: number): Promise<string[]> {
  const ss = await host.exec(['ss', '-tan', 'state', 'time-wait']);
  expect(ss.code).toBe(0);
  const lines = ss.stdout.split('\n').slice(1).filter(Boolean);
  return port === undefined ? lines : lines.filter((l) => l.includes(`:${port} `));
}

/**
 * The connection closed the expected way: the summary counts it, and the Node engine (which
 * reports per-connection events) also sent a `closed` event saying so.
 */
function expectClosed(events: ServerEvent[], engine: 'node' | 'raw', how: ClosedHow): void {
  const summary = events.at(-1);
  expect(summary).toMatchObject({ event: 'summary', closed: 1, closedHow: { [how]: 1 } });
  const closed = events.filter((e) => e.event === 'closed');
  if (engine === 'node') expect(closed).toMatchObject([{ how }]);
  else expect(closed).toEqual([]);
}

for (const engine of ['node', 'raw'] as const) {
  describeNs(`twlab serve --engine ${engine} in a sandbox`, () => {
    const serveEngine = (host: SandboxHost, args: string[], port?: number): Running =>
      serve(host, ['--engine', engine, ...args], port);

    it('server-first + --reuseaddr off: the restart fails with EADDRINUSE while TIME_WAIT holds the port; --reuseaddr on binds', async () => {
      await withSandbox({ hosts: 2 }, async (box) => {
        /** Serve one connection that the server closes first; return its events. */
        const serveOne = async (reuseaddr: 'on' | 'off', port: number): Promise<ServerEvent[]> => {
          const first = serveEngine(
            box.server,
            ['--close', 'server-first', '--reuseaddr', reuseaddr, '--exit-after', '1'],
            port,
          );
          await first.listening;
          const res = await request(box.client, {
            to: { address: box.server.address, port },
            close: 'wait-eof',
          });
          expect(res.error).toBeNull();
          expect(res.sawEof).toBe(true);
          expect((await first.exited).code).toBe(0);
          return first.events;
        };

        // Off, then restarted off: refused.
        const events = await serveOne('off', PORT);
        expectClosed(events, engine, 'server-first');
        expect(events.at(-1)).toMatchObject({ event: 'summary', bytesReceived: 3 });
        // The server sent the first FIN, so the server's side holds TIME_WAIT on its port.
        const tw = await timeWait(box.server, PORT);
        expect(tw.length).toBe(1);
        expect(tw[0]).toContain(`${box.server.address}:${PORT}`);
        expect(await timeWait(box.client)).toEqual([]);

        const refused = serveEngine(box.server, ['--reuseaddr', 'off', '--exit-after', '1']);
        const r = await refused.exited;
        expect(r.code).toBe(1);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(r.stderr).toMatch(
          new RegExp(
            `^twlab: cannot listen on ${box.server.address.replace(/\./g, '\\.')}:${PORT}: EADDRINUSE \\(address in use`,
          ),
        );
        expect(refused.events).toEqual([]);
        // SO_REUSEADDR must be on for BOTH sockets: the TIME_WAIT socket inherited "off" from the old
        // listener, so even a new listener with it on is refused (measured on this kernel).
        const stillRefused = serveEngine(box.server, ['--reuseaddr', 'on', '--exit-after', '1']);
        expect((await stillRefused.exited).code).toBe(1);

        // On, then restarted on (the seed server's setting): binds, with the TIME_WAIT socket still there.
        const other = PORT + 1;
        await serveOne('on', other);
        expect((await timeWait(box.server, other)).length).toBe(1);
        const again = serveEngine(box.server, ['--reuseaddr', 'on', '--duration', '0.3'], other);
        await again.listening;
        expect((await again.exited).code).toBe(0);
        expect(again.events.at(-1)).toMatchObject({ event: 'summary', stoppedBy: 'duration' });
        expect((await timeWait(box.server, other)).length).toBe(1);
      });
    });

    it('client-first (the seed server): the client holds TIME_WAIT and a restart with --reuseaddr off binds', async () => {
      await withSandbox({ hosts: 2 }, async (box) => {
        const first = serveEngine(box.server, [
          '--close',
          'client-first',
          '--reuseaddr',
          'off',
          '--exit-after',
          '1',
        ]);
        await first.listening;
        const res = await request(box.client, {
          to: { address: box.server.address, port: PORT },
          close: 'client-first',
        });
        expect(res.error).toBeNull();
        expect((await first.exited).code).toBe(0);
        expectClosed(first.events, engine, 'client-first');
        expect(await timeWait(box.server)).toEqual([]);
        expect((await timeWait(box.client, PORT)).length).toBe(1);
        const again = serveEngine(box.server, ['--reuseaddr', 'off', '--duration', '0.2']);
        await again.listening;
        expect((await again.exited).code).toBe(0);
      });
    });

    it('--linger 0 on the client: no TIME_WAIT anywhere and the server observes ECONNRESET', async () => {
      await withSandbox({ hosts: 2 }, async (box) => {
        const srv = serveEngine(box.server, ['--reply', 'ok', '--exit-after', '1']);
        await srv.listening;
        const res = await request(box.client, {
          to: { address: box.server.address, port: PORT },
          linger: 0,
          close: 'rst',
          awaitReplyBytes: 2,
        });
        expect(res.error).toBeNull();
        expect(res.reply).toBe('ok');
        expect((await srv.exited).code).toBe(0);
        expect(srv.events.find((e) => e.event === 'error')).toMatchObject({
          errno: 'ECONNRESET',
          code: 104,
          syscall: engine === 'node' ? 'read' : 'recv',
        });
        expectClosed(srv.events, engine, 'reset-by-peer');
        expect(srv.events.at(-1)).toMatchObject({ event: 'summary', errors: { ECONNRESET: 1 } });
        expect(await timeWait(box.client)).toEqual([]);
        expect(await timeWait(box.server)).toEqual([]);
      });
    });

    it('--close rst: the server resets, nobody holds TIME_WAIT, the client sees ECONNRESET', async () => {
      await withSandbox({ hosts: 2 }, async (box) => {
        const srv = serveEngine(box.server, ['--close', 'rst', '--exit-after', '1']);
        await srv.listening;
        const res = await request(box.client, {
          to: { address: box.server.address, port: PORT },
          close: 'wait-eof',
        });
        expect(res.error).toMatchObject({ errno: 'ECONNRESET' });
        expect((await srv.exited).code).toBe(0);
        expectClosed(srv.events, engine, 'rst');
        expect(await timeWait(box.client)).toEqual([]);
        expect(await timeWait(box.server)).toEqual([]);
      });
    });

    it('idle timeout closes a client that never finishes; too-large requests are cut off; framing counts messages', async () => {
      await withSandbox({ hosts: 2 }, async (box) => {
        const to = { address: box.server.address, port: PORT };
        const srv = serveEngine(box.server, ['--idle-timeout', '200', '--exit-after', '1']);
        await srv.listening;
        // The client waits for an EOF the server only sends when the idle timeout fires.
        const idle = await request(box.client, { to, close: 'wait-eof', payload: '' });
        expect(idle.sawEof).toBe(true);
        await srv.exited;
        expectClosed(srv.events, engine, 'idle-timeout');

        const big = serveEngine(box.server, ['--max-request-bytes', '10', '--exit-after', '1']);
        await big.listening;
        await request(box.client, { to, close: 'wait-eof', payload: 'x'.repeat(11) });
        await big.exited;
        expect(big.events.find((e) => e.event === 'error')).toMatchObject({ errno: 'too-large' });
        expectClosed(big.events, engine, 'too-large');

        const framed = serveEngine(box.server, [
          '--framing',
          'length-prefixed',
          '--reply',
          'r',
          '--close',
          'server-first',
          '--exit-after',
          '1',
        ]);
        await framed.listening;
        const res = await request(box.client, { to, close: 'wait-eof', framed: true, payload: 'hello' });
        expect(res.reply).toBe('\u0000\u0000\u0000\u0001r');
        await framed.exited;
        expect(framed.events.at(-1)).toMatchObject({ event: 'summary', messages: 1 });
      });
    });
  });
}

describeNs('twlab serve --udp in a sandbox', () => {
  it('--udp counts datagrams and answers them', async () => {
    await withSandbox({ hosts: 2 }, async (box) => {
      const srv = serve(box.server, ['--udp', '--reply', 'pong', '--exit-after', '3']);
      await srv.listening;
      const sent = await box.client.exec(
        [
          'python3',
          '-c',
          `import socket
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.settimeout(5)
n=0
for i in range(3):
    s.sendto(b"foo",("${box.server.address}",${PORT})); d,_=s.recvfrom(100); n+=d==b"pong"
print(n)`,
        ],
        { timeoutMs: 10_000 },
      );
      expect(sent.stdout.trim()).toBe('3');
      expect((await srv.exited).code).toBe(0);
      expect(srv.events.at(-1)).toMatchObject({
        event: 'summary',
        messages: 3,
        accepted: 3,
        bytesReceived: 9,
      });
    });
  });
});

describeNs('twlab serve: signals and human output', () => {
  it.each([
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const)('%s stops an unbounded server: summary printed, exit %i', async (signal, code) => {
    await withSandbox({ hosts: 1 }, async (box) => {
      const child = box.server.spawn(twlabArgv('serve', '--listen', `127.0.0.1:${PORT}`, '--reply', 'ok'));
      let out = '';
      child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
      const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
      for (let i = 0; i < 200 && !out.includes('listening on'); i++)
        await new Promise((r) => setTimeout(r, 50));
      expect(out).toMatch(/^listening on 127\.0\.0\.1:8080 \(tcp, close client-first, SO_REUSEADDR on\)/);
      const res = await request(box.client, {
        to: { address: '127.0.0.1', port: PORT },
        close: 'client-first',
        awaitReplyBytes: 2,
      });
      expect(res).toMatchObject({ error: null, reply: 'ok' });
      child.kill(signal);
      expect(await exited).toBe(code);
      expect(out).toMatch(/stopped \(signal\) after [\d.]+ s: 1 connections/);
      expect(out).toMatch(/closed: client-first 1/);
    });
  });
});
