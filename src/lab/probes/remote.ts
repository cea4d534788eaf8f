/**
 * The lab side of the probes: the modules the lab calls inside sandbox hosts (each path declared
 * once, with its type: see sandbox/remote.ts), and the small helpers the experiments share
 * (waiting on the host's TCP table).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { remote, remoteModule, type Remote } from '../../sandbox/remote.js';
import type { SandboxHost } from '../../sandbox/types.js';
import type * as Census from '../../observe/census.js';
import type * as TraceDiag from '../../observe/trace-diag.js';
import type * as Counters from './counters.js';
import type * as Lifetime from './lifetime.js';
import type * as Listeners from './listeners.js';
import type * as Nat from './nat.js';
import type * as Raw from './raw.js';
import type * as Server from './server.js';
import type * as Tcp from './tcp.js';
import type * as TcpTable from './tcp-table.js';

export { remote };

export const TCP = remoteModule<typeof Tcp>('lab/probes/tcp.js');
export const RAW = remoteModule<typeof Raw>('lab/probes/raw.js');
export const SERVER_PROBE = remoteModule<typeof Server>('lab/probes/server.js');
export const TCP_TABLE = remoteModule<typeof TcpTable>('lab/probes/tcp-table.js');
export const COUNTERS = remoteModule<typeof Counters>('lab/probes/counters.js');
export const LIFETIME = remoteModule<typeof Lifetime>('lab/probes/lifetime.js');
export const LISTENERS = remoteModule<typeof Listeners>('lab/probes/listeners.js');
export const NAT_PROBE = remoteModule<typeof Nat>('lab/probes/nat.js');
export const CENSUS = remoteModule<typeof Census>('observe/census.js');
export const TRACE_DIAG = remoteModule<typeof TraceDiag>('observe/trace-diag.js');

/** Socket probes inside `host`. */
export function tcp(host: SandboxHost): Remote<typeof Tcp> {
  return remote(host, TCP);
}

/** Raw-socket probes inside `host`. */
export function raw(host: SandboxHost): Remote<typeof Raw> {
  return remote(host, RAW);
}

export type TableRow = Tcp.TableRow;

/** Rows of `host`'s TCP table in `state` on local port `port` (any peer). */
export async function rowsOn(host: SandboxHost, port: number, state?: string): Promise<TableRow[]> {
  const rows = await tcp(host).table({ port });
  return rows.filter((r) => r.local.port === port && (state === undefined || r.state === state));
}

/** The states of the connection between two ports as `host` sees it (local port first). */
export async function statesOf(host: SandboxHost, localPort: number, peerPort: number): Promise<string[]> {
  const rows = await tcp(host).table({ port: localPort });
  return rows.filter((r) => r.local.port === localPort && r.peer.port === peerPort).map((r) => r.state);
}

/** Poll until `check` returns a value (not undefined) or timeoutMs passes; bounded. */
export async function pollFor<T>(
  check: () => Promise<T | undefined>,
  timeoutMs: number,
  everyMs = 50,
): Promise<T | undefined> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined || Date.now() >= until) return v;
    await sleep(everyMs);
  }
}
