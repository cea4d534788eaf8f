/**
 * The NAT sandbox's router as the conntrack tools see it, for tests that set up traffic through it
 * and then hold twlab's reads to `conntrack -L`: a churn that exits is not a table that is still.
 */
import { expect } from 'vitest';
import { twlabArgv } from '../../src/common/paths.js';
import type { SandboxHost } from '../../src/sandbox/index.js';
import type { ChurnSummary } from '../../src/traffic/churn-types.js';

/**
 * `conntrack -I` argv for a made-up ESTABLISHED TCP entry with this tuple (`-p tcp -s ... --dport
 * ...`): a marker in the table, or in an event stream, that no traffic of the test made.
 */
export function insertEntryArgv(tuple: readonly string[]): string[] {
  return ['conntrack', '-I', ...tuple, '--state', 'ESTABLISHED', '-t', '60', '-u', 'SEEN_REPLY'];
}

/** TCP entries of `conntrack -L` towards `dst` (an address), counted by state. */
export async function conntrackTcpStates(router: SandboxHost, dst: string): Promise<Record<string, number>> {
  const r = await router.exec(['conntrack', '-L', '-p', 'tcp', '-d', dst]);
  if (r.code !== 0) throw new Error(`conntrack -L: ${r.stderr}`);
  const states: Record<string, number> = {};
  for (const line of r.stdout.trim().split('\n').filter(Boolean)) {
    const state = line.split(/\s+/)[3]!;
    states[state] = (states[state] ?? 0) + 1;
  }
  return states;
}

/** Connections closed (TIME_WAIT, or CLOSE where a reset ended one), open ones, and any other state. */
function closedOpen(states: Record<string, number>): {
  closed: number;
  open: number;
  other: Record<string, number>;
} {
  const { TIME_WAIT = 0, CLOSE = 0, ESTABLISHED = 0, ...other } = states;
  return { closed: TIME_WAIT + CLOSE, open: ESTABLISHED, other };
}

/**
 * TCP states of conntrack entries (the tools' or twlab's): `closed` connections ended (TIME_WAIT;
 * CLOSE where a reset ended one, as a CI machine once showed for 3 of 30, most in TIME_WAIT),
 * `open` ones ESTABLISHED, nothing else.
 */
export function expectClosedAndOpen(
  states: Record<string, number>,
  want: { closed: number; open: number },
): void {
  expect(closedOpen(states)).toEqual({ ...want, other: {} });
  if (want.closed > 0) expect(states['TIME_WAIT']).toBeGreaterThan(0);
}

/**
 * Wait (15 s at most) until conntrack -L shows `closed` connections towards `dst` ended and `open`
 * ones ESTABLISHED, and nothing in between. The churn client counts a connection done when its FIN
 * is sent, and `create_connection` returns before the router has seen the handshake's last ACK:
 * the last exchanges can still be crossing the router (FIN_WAIT, LAST_ACK, SYN_RECV), for longer
 * on a loaded machine. Fails with the last reading.
 */
export async function waitForConntrackSettled(
  router: SandboxHost,
  dst: string,
  want: { closed: number; open: number },
  timeoutMs = 15_000,
): Promise<Record<string, number>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const states = await conntrackTcpStates(router, dst);
    const seen = closedOpen(states);
    const settled = seen.closed === want.closed && seen.open === want.open;
    if ((settled && Object.keys(seen.other).length === 0) || Date.now() > deadline) {
      expect(seen, `conntrack -L towards ${dst} (waited ${timeoutMs} ms at most)`).toEqual({
        ...want,
        other: {},
      });
      return states;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Wait (15 s at most) until `conntrack -L FILTER...` lists `n` entries: a sender that exited has
 * handed its last datagrams to the kernel, not yet to the router's conntrack. Fails with the count.
 */
export async function waitForConntrackEntries(
  router: SandboxHost,
  filter: string[],
  n: number,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await router.exec(['conntrack', '-L', ...filter]);
    if (r.code !== 0) throw new Error(`conntrack -L: ${r.stderr}`);
    const seen = r.stdout.trim().split('\n').filter(Boolean).length;
    if (seen === n) return;
    if (Date.now() > deadline) {
      expect(seen, `conntrack -L ${filter.join(' ')}: entries after ${timeoutMs} ms`).toBe(n);
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * `twlab churn --json` in `host` (client-first, TCP): every one of `count` connections must have
 * succeeded, or the test says which failed and how (churn exits 0 after failed iterations).
 */
export async function churnAllSucceed(host: SandboxHost, to: string, count: number): Promise<ChurnSummary> {
  const r = await host.exec(twlabArgv('churn', '--to', to, '--count', String(count), '--json'));
  expect(r.code, r.stderr).toBe(0);
  const s = JSON.parse(r.stdout) as ChurnSummary;
  expect({ succeeded: s.succeeded, failed: s.failed, errors: s.errors }).toEqual({
    succeeded: count,
    failed: 0,
    errors: [],
  });
  return s;
}
