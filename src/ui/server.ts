/**
 * `twlab ui`'s HTTP server. GET / (the page, with this run's token), GET /api/host, /api/census and
 * /api/doctor (?netns=INODE: host-api.ts),
 * GET /api/claims, GET /api/runs/:id/events (server-sent events); POST /api/predict and
 * POST /api/runs need the token (guard.ts). Bounded: loopback by default, 16 KiB bodies (413 past
 * that), request timeouts, a connection cap that evicts idle connections first, the model in a
 * worker with a time limit (model-thread.ts), one lab run at a time, event streams closed when
 * their run ends.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { RunError, UsageError } from '../common/errors.js';
import { CLAIMS } from '../lab/registry.js';
import { allowedHosts, capConnections } from '../common/http-guard.js';
import { newToken, refusal } from './guard.js';
import { predictInputFromForm } from './api.js';
import { HostApi } from './host-api.js';
import { ModelBusyError, predictOffThread } from './model-thread.js';
import { RunManager, type RunEvent } from './runs.js';
import { dashboardPage } from './page.js';

export interface UiOptions {
  host?: string;
  port?: number;
  /** For tests; a fresh random one by default. */
  token?: string;
  maxBodyBytes?: number;
  maxConnections?: number;
  /** Host names answered to besides the listen address (--allow-host). */
  allowHosts?: readonly string[];
}

export interface UiHandle {
  url: string;
  token: string;
  close(): Promise<void>;
}

export const DEFAULT_UI_LISTEN = '127.0.0.1:7411';
const MAX_BODY = 16 * 1024;

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

/** A body over the limit: answered 413, and the rest of it read and dropped. */
class BodyTooLarge extends UsageError {
  override name = 'BodyTooLarge';
}

function readJson(req: IncomingMessage, max: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let size = Number(req.headers['content-length'] ?? 0);
    const tooLarge = (): void => {
      reject(new BodyTooLarge(`request body over ${max} bytes`));
      req.removeAllListeners('data');
      req.resume();
    };
    if (size > max) return tooLarge();
    size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) tooLarge();
      else chunks.push(c);
    });
    req.on('end', () => {
      try {
        const v: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
        if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
        resolve(v as Record<string, unknown>);
      } catch {
        reject(new UsageError('the body is not a JSON object'));
      }
    });
    req.on('error', reject);
  });
}

export async function startUi(opts: UiOptions = {}): Promise<UiHandle> {
  const host = opts.host ?? '127.0.0.1';
  const token = opts.token ?? newToken();
  const runs = new RunManager(1);
  const hostApi = new HostApi();
  const maxBody = opts.maxBodyBytes ?? MAX_BODY;
  let hosts = new Set<string>();

  const streamRun = (res: ServerResponse, id: number): void => {
    const run = runs.get(id);
    if (!run) return send(res, 404, { error: `no run ${id}` });
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
    const write = (e: RunEvent): void => {
      res.write(`data: ${JSON.stringify(e)}\n\n`);
      if (e.type === 'result' || e.type === 'failed') res.end();
    };
    for (const e of run.events) write(e);
    if (run.done) return void res.end();
    run.listeners.add(write);
    res.on('close', () => run.listeners.delete(write));
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const why = refusal(req, hosts, token);
    if (why) return send(res, 403, { error: why });
    const path = (req.url ?? '/').split('?')[0]!;
    if (req.method === 'GET') {
      if (path === '/') {
        res.writeHead(200, {
          'content-type': 'text/html; charset=utf-8',
          'cache-control': 'no-store',
          'content-security-policy':
            "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; frame-ancestors 'none'",
          'x-frame-options': 'DENY',
        });
        return void res.end(
          dashboardPage(
            token,
            CLAIMS.map((c) => ({ id: c.id, claim: c.claim, estimateMs: c.estimateMs })),
          ),
        );
      }
      const routed = await hostApi.route(path, new URLSearchParams((req.url ?? '').split('?')[1] ?? ''));
      if (routed) return send(res, routed.status, routed.body);
      const m = /^\/api\/runs\/(\d+)\/events$/.exec(path);
      if (m) return streamRun(res, Number(m[1]));
      return send(res, 404, { error: 'not found' });
    }
    if (req.method === 'POST') {
      const body = await readJson(req, maxBody);
      if (path === '/api/predict') return send(res, 200, await predictOffThread(predictInputFromForm(body)));
      if (path === '/api/runs') {
        const run = runs.start(String(body['claim'] ?? ''));
        if (typeof run === 'string') return send(res, run.startsWith('unknown') ? 400 : 429, { error: run });
        return send(res, 202, { id: run.id, claim: run.claim, events: `/api/runs/${run.id}/events` });
      }
      return send(res, 404, { error: 'not found' });
    }
    res.setHeader('allow', 'GET, POST');
    return send(res, 405, { error: 'method not allowed' });
  };

  const server = createServer(
    {
      requestTimeout: 30_000,
      headersTimeout: 5_000,
      keepAliveTimeout: 5_000,
      connectionsCheckingInterval: 1_000,
    },
    (req, res) => {
      handle(req, res).catch((err: unknown) => {
        if (res.headersSent) return void res.end();
        const status =
          err instanceof BodyTooLarge
            ? 413
            : err instanceof UsageError
              ? 400
              : err instanceof ModelBusyError
                ? 429
                : err instanceof RunError
                  ? 503
                  : 500;
        // The client may still be sending what was refused: close once the answer is out.
        if (status === 413) res.setHeader('connection', 'close');
        send(res, status, {
          error: err instanceof Error ? err.message : String(err),
        });
      });
    },
  );
  capConnections(server, opts.maxConnections ?? 32);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new RunError(`cannot listen on ${host}:${opts.port ?? 7411}: ${err.code ?? err.message}`)),
    );
    server.listen(opts.port ?? 7411, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  hosts = allowedHosts(host, port, opts.allowHosts);
  const shown = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shown}:${port}/`,
    token,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
