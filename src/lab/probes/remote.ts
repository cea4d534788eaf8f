/**
 * The lab side of the probes: typed calls into probes/tcp.ts and probes/raw.ts running inside a
 * sandbox host, and the small helpers the S1/S2 experiments share (waiting on the host's TCP
 * table, a sandbox's sysctls as evidence).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { SandboxHost } from '../../sandbox/types.js';
import type * as Tcp from './tcp.js';
import type * as Raw from './raw.js';

type Fns<M> = {
  [K in keyof M]: M[K] extends (o: infer A, ...rest: never[]) => Promise<infer R>
    ? (o: A) => Promise<R>
    : never;
};

function bindModule<M>(host: SandboxHost, module: string): Fns<M> {
  return new Proxy({} as Fns<M>, {
    get: (_t, fn: string) => (o: unknown) => host.call(module, fn, [o]),
  });
}

/** Socket probes inside `host`. */
export function tcp(host: SandboxHost): Fns<typeof Tcp> {
  return bindModule<typeof Tcp>(host, 'lab/probes/tcp.js');
}

/** Raw-socket probes inside `host`. */
export function raw(host: SandboxHost): Fns<typeof Raw> {
  return bindModule<typeof Raw>(host, 'lab/probes/raw.js');
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
