/**
 * Typed calls into a sandbox host: the one way twlab calls its own functions inside a host.
 *
 *   // next to the module, once:  export const CHURN = remoteModule<typeof Churn>('traffic/churn.js');
 *   const summary = await remote(host, CHURN).runChurn({ to: '127.0.0.1:80' });
 *
 * The module's type rides along with its path (relative to dist/), so a renamed or removed
 * function, a wrong argument or a wrong result type fails at compile time; test/sandbox/remote.test.ts
 * checks that every declared path loads in dist/. Arguments and results travel as JSON.
 *
 * Events: a remote function may take, right after its JSON arguments, an `emit(event)` function.
 * The agent passes one only when the caller gave `onEvent`, so an optional parameter never
 * receives a function by accident.
 */
import type { SandboxHost } from './types.js';

type AnyFn = (...args: never[]) => unknown;

/** A module path relative to dist/ ("traffic/churn.js") that carries the module's type. */
export interface RemoteModule<M> {
  readonly path: string;
  /** Type only: never set. */
  readonly module?: M;
}

export function remoteModule<M>(path: string): RemoteModule<M> {
  return { path };
}

/** A function's parameters up to its first function-typed one (the emit, which JSON cannot carry). */
type JsonParams<A extends unknown[]> = number extends A['length']
  ? A
  : A extends []
    ? []
    : A extends [infer P, ...infer Rest]
      ? NonNullable<P> extends AnyFn
        ? []
        : [P, ...JsonParams<Rest>]
      : A extends [(infer P)?, ...infer Rest]
        ? NonNullable<P> extends AnyFn
          ? []
          : [P?, ...JsonParams<Rest>]
        : [];

/** The events a function emits: the argument of its emit parameter (never if it has none). */
type EventOf<F> = F extends (...a: infer A) => unknown
  ? EmitArg<Extract<NonNullable<A[number]>, AnyFn>>
  : never;
type EmitArg<E> = [E] extends [never] ? never : E extends (event: infer V) => unknown ? V : never;

type FnKeys<M> = { [K in keyof M]: M[K] extends AnyFn ? K : never }[keyof M];

/** Module M's functions as called in a host: the same JSON arguments, the result as a promise. */
export type Remote<M> = {
  [K in FnKeys<M>]: M[K] extends (...a: infer A) => infer R
    ? (...args: JsonParams<A>) => Promise<Awaited<R>>
    : never;
};

/** The events any function of M emits. */
export type RemoteEvent<M> = { [K in FnKeys<M>]: EventOf<M[K]> }[FnKeys<M>];

/** Module `mod`'s functions, run inside `host`; `onEvent` receives what they emit, in order. */
export function remote<M>(
  host: SandboxHost,
  mod: RemoteModule<M>,
  onEvent?: (event: RemoteEvent<M>) => void,
): Remote<M> {
  return new Proxy({} as Remote<M>, {
    get: (_target, fn) =>
      typeof fn === 'string'
        ? (...args: unknown[]) =>
            host.call(mod.path, fn, args, onEvent as ((event: unknown) => void) | undefined)
        : undefined,
  });
}
