/**
 * The exporter's HTTP server: GET /metrics (a fresh census per scrape) and GET / (a link page);
 * everything else 404/405; a Host header other than our address 403 (common/http-guard.ts).
 * Bounded: loopback unless told otherwise, request and header timeouts, keep-alive idle timeout, a
 * connection cap that evicts idle connections first, and no request bodies read.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { RunError } from '../common/errors.js';
import { allowedHosts, capConnections, hostRefusal } from '../common/http-guard.js';
import { createExporterRegistry, DEFAULT_TOP, type ExporterMetricsOptions } from './metrics.js';

export interface ExporterOptions extends ExporterMetricsOptions {
  host?: string;
  /** 0: a free port. */
  port?: number;
  /** Whole request (headers included) must arrive within this long; default 10 s. */
  requestTimeoutMs?: number;
  maxConnections?: number;
  /** Host names answered to besides the listen address (--allow-host). */
  allowHosts?: readonly string[];
}

export interface ExporterHandle {
  url: string;
  host: string;
  port: number;
  close(): Promise<void>;
}

export const DEFAULT_EXPORTER_LISTEN = '127.0.0.1:9477';

/** Whether a listen address is a loopback one (127/8, ::1). */
export function isLoopback(host: string): boolean {
  return host.startsWith('127.') || host === '::1' || host === 'localhost';
}

const INDEX = `<!doctype html><html><head><title>twlab exporter</title></head>
<body><h1>twlab exporter</h1><p><a href="/metrics">/metrics</a></p></body></html>\n`;

export async function startExporter(opts: ExporterOptions = {}): Promise<ExporterHandle> {
  const { registry, close: closeRegistry } = createExporterRegistry({
    top: opts.top ?? DEFAULT_TOP,
    ...(opts.source ? { source: opts.source } : {}),
    ...(opts.namespaces ? { namespaces: opts.namespaces } : {}),
    ...(opts.rateWindowSec ? { rateWindowSec: opts.rateWindowSec } : {}),
  });
  const host = opts.host ?? '127.0.0.1';
  const timeout = opts.requestTimeoutMs ?? 10_000;

  let hosts = new Set<string>();

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    // A page whose name was rebound to our address reaches us under that name (DNS rebinding).
    const badHost = hostRefusal(req.headers.host, hosts);
    if (badHost) {
      res.writeHead(403, { 'content-type': 'text/plain' }).end(`${badHost}\n`);
      return;
    }
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics' && path !== '/') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: only /metrics and /\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    if (path === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(INDEX);
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: unknown) =>
        res
          .writeHead(500, { 'content-type': 'text/plain' })
          .end(`census failed: ${err instanceof Error ? err.message : String(err)}\n`),
    );
  };

  const server: Server = createServer(
    { requestTimeout: timeout, headersTimeout: Math.min(timeout, 10_000), keepAliveTimeout: 5_000 },
    handle,
  );
  capConnections(server, opts.maxConnections ?? 64);
  server.timeout = timeout;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new RunError(`cannot listen on ${host}:${opts.port ?? 9477}: ${err.code ?? err.message}`)),
    );
    server.listen(opts.port ?? 9477, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  hosts = allowedHosts(host, addr.port, opts.allowHosts);
  const shown = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${shown}:${addr.port}/metrics`,
    host: addr.address,
    port: addr.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => void closeRegistry().then(resolve, resolve));
        server.closeAllConnections();
      }),
  };
}
