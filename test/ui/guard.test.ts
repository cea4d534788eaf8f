/**
 * The dashboard's request guard on its own: Host, Origin and token rules, each way to be refused.
 */
import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { allowedHosts } from '../../src/common/http-guard.js';
import { refusal, TOKEN_HEADER } from '../../src/ui/guard.js';

const TOKEN = 'a'.repeat(32);
const hosts = allowedHosts('127.0.0.1', 7411);
const req = (method: string, headers: Record<string, string>): IncomingMessage =>
  ({ method, headers }) as unknown as IncomingMessage;

describe('ui guard', () => {
  it('answers GETs under its own address or localhost', () => {
    expect(refusal(req('GET', { host: '127.0.0.1:7411' }), hosts, TOKEN)).toBeUndefined();
    expect(refusal(req('GET', { host: 'localhost:7411' }), hosts, TOKEN)).toBeUndefined();
  });
  it('refuses another Host (DNS rebinding) and another port', () => {
    expect(refusal(req('GET', { host: 'evil.example:7411' }), hosts, TOKEN)).toMatch(/Host/);
    expect(refusal(req('GET', { host: '127.0.0.1:80' }), hosts, TOKEN)).toMatch(/Host/);
    expect(refusal(req('GET', {}), hosts, TOKEN)).toMatch(/Host/);
  });
  it('refuses a foreign Origin even with the token', () => {
    const r = req('POST', { host: '127.0.0.1:7411', origin: 'http://evil.example', [TOKEN_HEADER]: TOKEN });
    expect(refusal(r, hosts, TOKEN)).toMatch(/Origin/);
    const n = req('POST', { host: '127.0.0.1:7411', origin: 'null', [TOKEN_HEADER]: TOKEN });
    expect(refusal(n, hosts, TOKEN)).toMatch(/null/);
  });
  it('needs the exact token on POST', () => {
    const base = { host: '127.0.0.1:7411', origin: 'http://127.0.0.1:7411' };
    expect(refusal(req('POST', base), hosts, TOKEN)).toMatch(/token/);
    expect(refusal(req('POST', { ...base, [TOKEN_HEADER]: 'b'.repeat(32) }), hosts, TOKEN)).toMatch(/token/);
    expect(refusal(req('POST', { ...base, [TOKEN_HEADER]: TOKEN.slice(1) }), hosts, TOKEN)).toMatch(/token/);
    expect(refusal(req('POST', { ...base, [TOKEN_HEADER]: TOKEN }), hosts, TOKEN)).toBeUndefined();
  });
  it('brackets IPv6 listen addresses', () => {
    expect(allowedHosts('::1', 7411)).toEqual(new Set(['[::1]:7411', 'localhost:7411']));
    // 0.0.0.0 is no name a client sends: see server-limits.test.ts for what a wildcard answers to.
    expect(allowedHosts('0.0.0.0', 7411).has('0.0.0.0:7411')).toBe(false);
  });
});
