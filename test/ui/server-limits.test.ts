/**
 * The dashboard's and the exporter's edges, on loopback servers started in this process: the model
 * off the request path, the form's fields through the CLI's parser, 413 for a large body, idle
 * connections that cannot lock a client out, and the Host rules (DNS rebinding, 0.0.0.0).
 */
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allowedHosts } from '../../src/common/http-guard.js';
import { startExporter, type ExporterHandle } from '../../src/exporter/server.js';
import { startUi, type UiHandle } from '../../src/ui/server.js';
import { TOKEN_HEADER } from '../../src/ui/guard.js';

interface Answer {
  status: number;
  body: string;
  ms: number;
}

function http(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer; chunked?: boolean } = {},
): Promise<Answer> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, ms: Date.now() - t0 }));
    });
    req.on('error', reject);
    if (opts.chunked && opts.body) {
      // No content-length: the limit must be found while reading.
      const b = Buffer.from(opts.body);
      for (let i = 0; i < b.length; i += 4096) req.write(b.subarray(i, i + 4096));
    } else if (opts.body) req.write(opts.body);
    req.end();
  });
}

describe('twlab ui server limits', () => {
  let ui: UiHandle;
  const post = (path: string, body: unknown, extra: { chunked?: boolean } = {}): Promise<Answer> =>
    http(new URL(path, ui.url).href, {
      method: 'POST',
      headers: { [TOKEN_HEADER]: ui.token, 'content-type': 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
      ...extra,
    });

  beforeAll(async () => {
    ui = await startUi({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await ui.close();
  });

  it(
    'answers /api/census while the largest prediction the form accepts runs, and that one within its bound',
    { timeout: 200_000 },
    async () => {
      const rss0 = process.memoryUsage.rss();
      let peak = rss0;
      const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 100);
      const big = post('/api/predict', {
        rate: 1_000_000,
        destinations: 10_000,
        sourceAddresses: 3,
        durationSec: 3600,
        low: 1,
        high: 65535,
        twReuse: 1,
      });
      let bigDone = false;
      void big.then(() => (bigDone = true));
      // The prediction now runs; the census must not wait for it (answered before it is done).
      await new Promise((r) => setTimeout(r, 300));
      const census = await http(new URL('/api/census', ui.url).href);
      expect(census.status).toBe(200);
      expect(bigDone).toBe(false);
      expect(census.ms).toBeLessThan(5_000);
      // A second prediction while the first runs: refused at once, not queued.
      const second = await post('/api/predict', { rate: 10 });
      expect(second.status).toBe(429);
      const answer = await big;
      clearInterval(sampler);
      expect(answer.status).toBe(200);
      const doc = JSON.parse(answer.body) as { coarse: unknown; fixes: unknown[] };
      expect(doc.coarse).not.toBeNull();
      expect(doc.fixes.length).toBeGreaterThan(0);
      expect((peak - rss0) / 2 ** 20).toBeLessThan(500);
    },
  );

  it.each([
    [{ rate: '0x10' }, /rate: '0x10' is not a decimal number/],
    [{ rate: '1e3' }, /rate: '1e3' is not a decimal number/],
    [{ rate: [5] }, /rate: '\[5\]' is not a number or a string/],
    [{ rate: 5, destinations: '0x10' }, /destinations: '0x10' is not a whole number/],
    [{ rate: 5, destinations: 2.5 }, /destinations: '2.5' is not a whole number/],
    [{ rate: 5, close: ['rst'] }, /close: '\[\\"rst\\"\]' is not a number or a string/],
    [{ rate: 5, loopback: 'yes' }, /loopback: '\\"yes\\"' is not accepted/],
    [{ rate: 'a\nb' }, /rate: 'a\\nb' is not a decimal number/],
    [
      { rate: 5, destinations: 10_000, sourceAddresses: 4 },
      /destinations x sourceAddresses: 40000 is too many/,
    ],
  ])('refuses the form field %j as the CLI would (400)', async (body, message) => {
    const r = await post('/api/predict', body);
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body).error).toMatch(message);
  });

  it('answers 413 to a body over the limit, with or without a content-length', async () => {
    const big = JSON.stringify({ rate: 5, pad: 'x'.repeat(40_000) });
    expect((await post('/api/predict', big)).status).toBe(413);
    expect((await post('/api/predict', big, { chunked: true })).status).toBe(413);
  });

  it('serves a client while 32 idle connections are open', { timeout: 30_000 }, async () => {
    const { port } = new URL(ui.url);
    const idle: Socket[] = [];
    for (let i = 0; i < 40; i++) {
      const s = connect(Number(port), '127.0.0.1');
      s.on('error', () => {});
      if (i % 2) s.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n'); // headers never finished
      idle.push(s);
    }
    await new Promise((r) => setTimeout(r, 300));
    try {
      const r = await http(ui.url);
      expect(r.status).toBe(200);
      expect(r.ms).toBeLessThan(3_000);
    } finally {
      for (const s of idle) s.destroy();
    }
  });
});

describe('Host rules of the local servers', () => {
  it("answers a server on 0.0.0.0 under this machine's name and addresses, not under 0.0.0.0 only", () => {
    const hosts = allowedHosts('0.0.0.0', 7411, ['scrape.example']);
    expect(hosts.has(`${hostname().toLowerCase()}:7411`)).toBe(true);
    expect(hosts.has('localhost:7411')).toBe(true);
    expect(hosts.has('scrape.example:7411')).toBe(true);
    for (const a of Object.values(networkInterfaces()).flat()) {
      if (a && a.family === 'IPv4') expect(hosts.has(`${a.address}:7411`)).toBe(true);
    }
    expect(hosts.has('evil.example:7411')).toBe(false);
  });

  describe('twlab exporter', () => {
    let exp: ExporterHandle;
    beforeAll(async () => {
      exp = await startExporter({ host: '127.0.0.1', port: 0, allowHosts: ['metrics.example'] });
    });
    afterAll(async () => {
      await exp.close();
    });

    it('refuses a Host header that is not its address (DNS rebinding)', async () => {
      const r = await http(exp.url.replace('/metrics', '/'), {
        headers: { host: `evil.example:${exp.port}` },
      });
      expect(r.status).toBe(403);
      expect(r.body).toMatch(/Host 'evil.example:\d+' is not this server's address/);
    });

    it('answers under its address, localhost and an allowed name', async () => {
      for (const host of [`127.0.0.1:${exp.port}`, `localhost:${exp.port}`, `METRICS.example:${exp.port}`]) {
        const r = await http(exp.url.replace('/metrics', '/'), { headers: { host } });
        expect(r.status).toBe(200);
      }
    });
  });
});
