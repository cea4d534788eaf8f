/**
 * What twlab's local HTTP servers (the dashboard and the exporter) share: which Host headers they
 * answer to, and a connection cap that idle clients cannot use to lock others out.
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import { isIP } from 'node:net';
import { UsageError } from './errors.js';
import { show } from './parse.js';

const isWildcard = (host: string): boolean => host === '0.0.0.0' || host === '::';
const isLoopbackHost = (host: string): boolean => host.startsWith('127.') || host === '::1';

/**
 * Host header values (lower case) a server listening on host:port answers to, so that a page whose
 * name was rebound to our address (DNS rebinding) is refused: the listen address; for loopback,
 * localhost; for any other address, this machine's name too; for 0.0.0.0 or ::, every address of
 * this machine's interfaces. `extra`: names the user allowed (--allow-host), e.g. a DNS alias.
 */
export function allowedHosts(host: string, port: number, extra: readonly string[] = []): Set<string> {
  const names = new Set<string>(isWildcard(host) ? [] : [host]);
  if (isWildcard(host)) {
    names.add('localhost');
    for (const list of Object.values(networkInterfaces())) {
      for (const a of list ?? []) {
        if (host === '::' || a.family === 'IPv4') names.add(a.address);
      }
    }
  } else if (isLoopbackHost(host)) names.add('localhost');
  if (!isLoopbackHost(host)) names.add(hostname());
  for (const name of extra) names.add(name);
  const out = new Set<string>();
  for (const name of names) out.add(`${name.includes(':') ? `[${name}]` : name}:${port}`.toLowerCase());
  return out;
}

/** Why a request's Host header is refused, or undefined. */
export function hostRefusal(hostHeader: string | undefined, hosts: Set<string>): string | undefined {
  const host = hostHeader ?? '';
  return hosts.has(host.toLowerCase()) ? undefined : `Host ${show(host)} is not this server's address`;
}

/** `--allow-host NAME`: a DNS name or an address literal, without a port. */
export function parseAllowHost(text: string): string {
  const name = text.trim();
  const dns = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\.?$/;
  if (isIP(name) === 0 && !dns.test(name)) {
    throw new UsageError(
      `--allow-host: ${show(text)} is not a host name (accepted: a DNS name or an IP address, no port)`,
    );
  }
  return name;
}

/**
 * At most `max` connections; when a new one would pass the cap, the connection idle longest (no
 * request in progress, including one that has not finished sending its headers) is closed to make
 * room, so a client that opens connections and sends nothing cannot lock others out. Only when
 * every connection is busy with a request is the new one refused.
 */
export function capConnections(server: Server, max: number): void {
  const idle = new Set<Socket>(); // in insertion order: the longest idle first
  let open = 0;
  server.on('connection', (socket: Socket) => {
    if (open >= max) {
      const oldest = idle.values().next().value;
      if (oldest === undefined) return void socket.destroy();
      idle.delete(oldest);
      oldest.destroy();
    }
    open++;
    idle.add(socket);
    socket.once('close', () => {
      open--;
      idle.delete(socket);
    });
  });
  server.on('request', (req, res) => {
    const socket = req.socket;
    idle.delete(socket);
    res.once('finish', () => {
      if (!socket.destroyed) idle.add(socket);
    });
  });
}
