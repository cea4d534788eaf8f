/**
 * `twlab serve` under a low open-file limit (prlimit --nofile): both engines say what they refused
 * and why. 300 loopback clients connect to a server allowed 128 files; the node engine must count
 * every connection it closed for want of an fd (libuv's own EMFILE handling closes them silently),
 * the raw engine its EMFILE from accept4().
 */
import { spawn } from 'node:child_process';
import { createServer, connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { CLI } from '../helpers/cli.js';

const CLIENTS = 300;
const NOFILE = 128;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

interface Summary {
  accepted: number;
  dropped: number;
  errors: Record<string, number>;
}

describe('twlab serve under RLIMIT_NOFILE', () => {
  it.each(['node', 'raw'])(
    '--engine %s counts the connections it refused, with the reason',
    { timeout: 60_000 },
    async (engine) => {
      const port = await freePort();
      const child = spawn(
        'prlimit',
        [
          `--nofile=${NOFILE}:${NOFILE}`,
          '--',
          process.execPath,
          CLI,
          'serve',
          ...['--listen', `127.0.0.1:${port}`, '--engine', engine, '--json', '--duration', '8'],
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let out = '';
      let err = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
      const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
      for (let i = 0; i < 100 && !out.includes('"listening"'); i++)
        await new Promise((r) => setTimeout(r, 100));
      expect(out, err).toContain('"listening"');
      const clients: Socket[] = [];
      const connected: Promise<void>[] = [];
      for (let i = 0; i < CLIENTS; i++) {
        const c = connect(port, '127.0.0.1');
        c.on('error', () => {});
        connected.push(new Promise((r) => c.once('connect', () => r())));
        clients.push(c);
      }
      // Not a fixed sleep: every handshake done (each connection is then the server's to accept
      // or refuse, even once closed here), and the server at its limit (it said EMFILE), before
      // the clients let go; 20 s at most, then the assertions below say what was missing.
      const deadline = Date.now() + 20_000;
      let all = false;
      void Promise.all(connected).then(() => (all = true));
      while (Date.now() < deadline && !(all && out.includes('"EMFILE"')))
        await new Promise((r) => setTimeout(r, 50));
      for (const c of clients) c.destroy();
      expect(await exited, err).toBe(0);
      const summary = out
        .split('\n')
        .filter((l) => l.includes('"summary"'))
        .map((l) => JSON.parse(l) as Summary)[0]!;
      expect(summary.errors['EMFILE'] ?? 0).toBeGreaterThan(0);
      if (engine === 'node') {
        // Every connection is accounted for: kept, or refused and counted.
        expect(summary.dropped).toBeGreaterThan(0);
        expect(summary.accepted + summary.dropped).toBe(CLIENTS);
      }
    },
  );
});
