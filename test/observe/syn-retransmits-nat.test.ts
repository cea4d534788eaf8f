/**
 * `twlab trace` across a NAT, against the kernel: a server-first churn through 10 NAT ports
 * (40000-40009), so reused NAT ports meet the server's TIME_WAIT and connects stall; then one
 * connect whose SYNs the router drops, so it times out. The trace (the built CLI, run outside
 * the sandbox: tracefs sees every namespace) must show the SYN retransmissions and stalls that
 * the client's own kernel counter (TcpExt TCPSynRetrans in /proc/net/netstat, what nstat reads)
 * and the churn's own stall figures say in the same run. Nothing is compared with a hard-coded
 * kernel timing: the timeout's length is the churn's own --timeout.
 */
import { spawn } from 'node:child_process';
import { expect } from 'vitest';
import { runChurnInSandbox, type SandboxChurnSummary } from '../../src/traffic/churn-sandbox.js';
import type { SandboxHost } from '../../src/sandbox/index.js';
import type { SlowConnect, TraceResult } from '../../src/observe/trace.js';
import { CLI } from '../helpers/cli.js';
import { describeNs, itNs } from '../helpers/sandbox.js';

/**
 * A port no other test uses, nor this file run at the same time from another checkout: the
 * trace is global (every namespace's events) and filtered to it in the kernel.
 */
const PORT = 18000 + (process.pid % 1000);
const TO = `203.0.113.2:${PORT}`;
const TIMEOUT_MS = 2500;

async function synRetrans(host: SandboxHost): Promise<number> {
  const lines = (await host.exec(['cat', '/proc/net/netstat'])).stdout
    .split('\n')
    .filter((l) => l.startsWith('TcpExt:'));
  const names = lines[0]!.split(/\s+/);
  return Number(lines[1]!.split(/\s+/)[names.indexOf('TCPSynRetrans')]);
}

/** `twlab trace --port PORT --json`, ready once it printed its instance; SIGINT ends it with its JSON. */
async function startCliTrace(): Promise<{ stop(): Promise<TraceResult> }> {
  const child = spawn(
    process.execPath,
    [CLI, 'trace', '--port', String(PORT), '--duration', '120', '--json'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  await new Promise<void>((resolve, reject) => {
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      if (stderr.includes('tracefs instance')) resolve();
    });
    void exited.then((code) => reject(new Error(`twlab trace exited ${code}: ${stderr}`)));
  });
  return {
    async stop() {
      child.kill('SIGINT');
      const code = await exited;
      expect(code, stderr).toBe(130);
      return JSON.parse(stdout) as TraceResult;
    },
  };
}

interface Run {
  s: SandboxChurnSummary;
  trace: TraceResult;
  kernel: { afterChurn: number; afterTimeout: number };
  timeout: { code: number | null; summary: { failed: number; firstError: { errno: string } | null } };
}

async function run(): Promise<Run> {
  const trace = await startCliTrace();
  const kernel = { afterChurn: 0, afterTimeout: 0 };
  let timeout: Run['timeout'] | undefined;
  let s: SandboxChurnSummary;
  let result: TraceResult;
  try {
    s = await runChurnInSandbox(
      { to: TO, count: 60, close: 'server-first', timeoutMs: 5000, stopOnError: false },
      { nat: { ports: { low: 40000, high: 40009 } } },
      undefined,
      {
        async started(sb) {
          expect(await synRetrans(sb.client)).toBe(0); // a fresh namespace
        },
        async read(sb) {
          kernel.afterChurn = await synRetrans(sb.client);
          // The router now drops the client's SYNs: one connect that times out (--timeout).
          const drop = await sb.router!.exec(['nft', '-f', '-'], {
            input:
              'table ip twtest {\n  chain dropsyn {\n    type filter hook forward priority 0;\n' +
              `    tcp dport ${PORT} drop\n  }\n}\n`,
          });
          expect(drop.code, drop.stderr).toBe(0);
          const c = await sb.client.exec(
            [
              process.execPath,
              CLI,
              'churn',
              '--to',
              TO,
              '--count',
              '1',
              '--timeout',
              String(TIMEOUT_MS),
              '--json',
            ],
            { timeoutMs: 30_000 },
          );
          timeout = { code: c.code, summary: JSON.parse(c.stdout) as Run['timeout']['summary'] };
          kernel.afterTimeout = await synRetrans(sb.client);
        },
      },
    );
  } finally {
    // Events still in flight are read before the JSON is printed (the trace drains its buffer).
    result = await trace.stop();
  }
  return { s, trace: result, kernel, timeout: timeout! };
}

const fromClient = (c: SlowConnect): boolean => c.local.address === '198.51.100.1' && c.remote.port === PORT;

describeNs('twlab trace across a NAT: SYN retransmissions and stalls equal the kernel and the churn', () => {
  itNs(
    'server-first through 10 NAT ports, then a dropped SYN that times out',
    async () => {
      const { s, trace, kernel, timeout } = await run();
      expect(trace.lostEvents).toBe(0);
      expect(trace.synRetransmits.traced).toBe(true);
      const slow = trace.slowConnects.filter(fromClient).sort((a, b) => a.timeMs - b.timeMs);
      // The dropped connect is the last to give up in SYN-SENT (it ran after the churn); a churn
      // connect that timed out too (rare; the churn counts it failed) gave up before it.
      const closed = slow.filter((c) => c.outcome === 'closed');
      const timedOut = closed.at(-1);
      const churnPart = slow.filter((c) => c !== timedOut);

      // Every SYN the client's kernel sent again is in the trace, split by connect: the churn's
      // part, then the timed-out connect's part (sent = err 0; unsent ones are not counted).
      const sent = (cs: SlowConnect[]): number => cs.reduce((n, c) => n + c.synRetransmits, 0);
      const unsent = trace.synRetransmits.failedRetransmits;
      expect(sent(slow)).toBe(trace.synRetransmits.synRetransmits);
      expect(kernel.afterTimeout).toBeGreaterThanOrEqual(sent(slow));
      expect(kernel.afterTimeout).toBeLessThanOrEqual(sent(slow) + unsent);
      expect(sent(churnPart)).toBeLessThanOrEqual(kernel.afterChurn);
      expect(sent(churnPart) + unsent).toBeGreaterThanOrEqual(kernel.afterChurn);

      // The churn's stalls (iterations of 500 ms or more) are the trace's stalled connects; the
      // churn's time for its first one includes the handshake the trace measured.
      expect(churnPart.filter((c) => c.outcome === 'unfinished')).toEqual([]);
      expect(closed.length - 1).toBeLessThanOrEqual(s.failed);
      const stalled = churnPart.filter((c) => c.stalled);
      expect(stalled.length).toBe(s.stalls.count);
      expect(trace.synRetransmits.stalled).toBe(s.stalls.count);
      if (s.stalls.first) {
        const first = stalled[0]!;
        expect(first.durationMs!).toBeLessThanOrEqual(s.stalls.first.ms + 1);
        expect(s.stalls.first.ms - first.durationMs!).toBeLessThan(500);
        expect(trace.synRetransmits.longestStallMs!).toBeLessThanOrEqual(s.latencyMs.max + 1);
      }
      // A stall is a SYN sent again: each one ends after its last retransmit.
      for (const c of stalled) {
        expect(c.synRetransmits, JSON.stringify(c)).toBeGreaterThan(0);
        expect(c.retransmitsAtMs.at(-1)!).toBeLessThanOrEqual(c.durationMs!);
      }

      // The timeout: the churn's own ETIMEDOUT after --timeout, the trace's connect gave up in
      // SYN-SENT that long after connect(), with the SYNs the kernel counted meanwhile.
      expect(timeout.code).toBe(0);
      expect(timeout.summary.firstError?.errno).toBe('ETIMEDOUT');
      expect(timedOut, JSON.stringify(slow)).toBeDefined();
      expect(timedOut!.durationMs!).toBeGreaterThan(TIMEOUT_MS * 0.9);
      expect(timedOut!.synRetransmits).toBeGreaterThanOrEqual(
        kernel.afterTimeout - kernel.afterChurn - unsent,
      );
      expect(timedOut!.synRetransmits).toBeLessThanOrEqual(kernel.afterTimeout - kernel.afterChurn);
      expect(timedOut!.synRetransmits).toBeGreaterThan(0);
      expect(trace.synRetransmits.connects.closed).toBe(closed.length);
      process.stderr.write(
        `trace across NAT: ${s.succeeded}/${s.attempted}, churn stalls ${s.stalls.count} (first ${s.stalls.first?.ms} ms), ` +
          `trace stalls ${stalled.length} (${stalled.map((c) => Math.round(c.durationMs!)).join(', ')} ms), ` +
          `SYN retransmits trace ${sent(slow)} kernel ${kernel.afterTimeout}; timeout after ${Math.round(timedOut!.durationMs!)} ms ` +
          `with ${timedOut!.synRetransmits}\n`,
      );
    },
    120_000,
    // A loaded machine can make an iteration take 500 ms outside its handshake (a churn stall
    // the trace rightly does not see as one): each run makes its own sandbox; one retry.
    { retry: 1 },
  );
});
