/**
 * What keeps the dashboard from being driven by another web page: a per-run token embedded in
 * the served page and required on every POST (a page on another origin cannot read it), Origin
 * checked against our own origin when a browser sends one, and Host checked against the listen
 * address (a DNS-rebinding page reaches us under its own host name; common/http-guard.ts).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { hostRefusal } from '../common/http-guard.js';
import { show } from '../common/parse.js';

export const TOKEN_HEADER = 'x-twlab-token';

export function newToken(): string {
  return randomBytes(24).toString('base64url');
}

/** Why a request is refused (403), or undefined when it may go on. */
export function refusal(req: IncomingMessage, hosts: Set<string>, token: string): string | undefined {
  const badHost = hostRefusal(req.headers.host, hosts);
  if (badHost) return badHost;
  const origin = req.headers.origin;
  if (
    origin !== undefined &&
    origin !== 'null' &&
    !hosts.has(origin.replace(/^https?:\/\//, '').toLowerCase())
  )
    return `Origin ${show(origin)} is not this dashboard`;
  if (req.method === 'POST') {
    if (origin === 'null') return 'Origin null is refused for POST';
    const given = Buffer.from(String(req.headers[TOKEN_HEADER] ?? ''));
    const want = Buffer.from(token);
    if (given.length !== want.length || !timingSafeEqual(given, want)) return 'missing or wrong token';
  }
  return undefined;
}
