/**
 * The churn engine (runChurn) inside sandbox hosts, checked against the kernel's own socket table
 * (`ss` in the host) and its errnos.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeNs } from '../helpers/sandbox.js';
import { createSandbox } from '../../src/sandbox/index.js';
import { remote } from '../../src/sandbox/remote.js';
import type { Sandbox, SandboxHost } from '../../src/sandbox/types.js';
import { CHURN } from '../../src/traffic/remote.js';
import { startChurnServer, type ChurnServer } from '../../src/traffic/churn-sandbox.js';
import type { ChurnEvent, ChurnOptions, ChurnSummary } from '../../src/traffic/churn-types.js';

const TO = '127.0.0.1:8080';

/**
 * TIME_WAIT sockets in `host` whose local port is in the client range (and peer port is
 * `peerPort`, if given), counted by ss once none of them is still closing: churn counts a
 * connection done when its FIN is out, and the server's FIN that ends FIN-WAIT-2 comes after.
 * 10 s at most; then the count as it is (the assertion says what is missing).
 */
async function clientTimeWait(host: SandboxHost, peerPort?: number): Promise<number> {
  const closing = new Set(['FIN-WAIT-1', 'FIN-WAIT-2', 'CLOSING', 'LAST-ACK']);
  const deadline = Date.now() + 10_000;
  for (;;) {
    const r = await host.exec(['ss', '-Htan']);
    expect(r.code).toBe(0);
    const ours = r.stdout
      .split('\n')
      .map((line) => line.trim().split(/\s+/))
      .filter(([, , , local = '', peer = '']) => {
        // ss prints: State Recv-Q Send-Q Local:Port Peer:Port.
        const port = Number(local.slice(local.lastIndexOf(':') + 1));
        const far = Number(peer.slice(peer.lastIndexOf(':') + 1));
        return port >= 50000 && port <= 50099 && (peerPort === undefined || far === peerPort);
      });
    if (!ours.some(([state]) => closing.has(state!)) || Date.now() > deadline)
      return ours.filter(([state]) => state === 'TIME-WAIT').length;
    await new Promise((res) => setTimeout(res, 50));
  }
}

describeNs('runChurn in a sandbox host', () => {
  let box: Sandbox;
  let server: ChurnServer;

  beforeAll(async () => {
    box = await createSandbox({
      hosts: 1,
      portRange: { low: 50000, high: 50099 },
      sysctls: { tcp_tw_reuse: 0 },
    });
    server = await startChurnServer(box.server, { to: TO });
  });
  afterAll(async () => {
    await server?.stop();
    await box?.close();
  });

  const run = (opts: Partial<ChurnOptions>, onEvent?: (e: ChurnEvent) => void): Promise<ChurnSummary> =>
    remote(box.client, CHURN, onEvent).runChurn({ to: TO, ...opts });

  it('--linger 0 closes with RST: no TIME_WAIT left, so 600 connections fit in 100 ports', async () => {
    const before = await clientTimeWait(box.client);
    const s = await run({ linger: 0, count: 600 });
    expect(s.settings.linger).toBe(0);
    expect(s.firstError).toBeNull();
    expect(s.succeeded).toBe(600);
    expect(await clientTimeWait(box.client)).toBe(before);
  });

  it('without linger the same client leaves one TIME_WAIT per connection (the control)', async () => {
    const before = await clientTimeWait(box.client);
    const s = await run({ count: 30 });
    expect(s.succeeded).toBe(30);
    expect((await clientTimeWait(box.client)) - before).toBe(30);
  });

  it('close rst is the same abortive close', async () => {
    const before = await clientTimeWait(box.client);
    const s = await run({ close: 'rst', count: 150 });
    expect(s.succeeded).toBe(150);
    expect(await clientTimeWait(box.client)).toBe(before);
  });

  it('reports progress events and the first failure as events', async () => {
    const events: ChurnEvent[] = [];
    const s = await run({ count: 300, rate: 2000, progressIntervalMs: 20 }, (e) => events.push(e));
    expect(events[0]?.type).toBe('start');
    const progress = events.filter((e) => e.type === 'progress');
    expect(progress.length).toBeGreaterThan(1);
    const errors = events.filter((e) => e.type === 'error');
    expect(errors).toHaveLength(1);
    expect(s.failed).toBe(1);
    expect(errors[0]).toMatchObject({ error: { errno: 'EADDRNOTAVAIL', atIteration: s.attempted } });
  });
});

describeNs('runChurn bounds and errors', () => {
  let box: Sandbox;
  let server: ChurnServer;

  beforeAll(async () => {
    box = await createSandbox({ hosts: 1, sysctls: { tcp_tw_reuse: 1 } });
    server = await startChurnServer(box.server, { to: TO });
  });
  afterAll(async () => {
    await server?.stop();
    await box?.close();
  });

  const run = (opts: Partial<ChurnOptions>): Promise<ChurnSummary> =>
    remote(box.client, CHURN).runChurn({ to: TO, ...opts });

  it('keeps C connections in flight and completes every one', async () => {
    const s = await run({ count: 2000, concurrency: 16 });
    expect(s.settings.concurrency).toBe(16);
    expect(s.firstError).toBeNull();
    expect(s.succeeded).toBe(2000);
    expect(s.localPortsUsed).toBeGreaterThan(1);
  });

  it('a duration alone bounds the run', async () => {
    const s = await run({ durationS: 0.5, rate: 500 });
    expect(s.stoppedBy).toBe('duration');
    expect(s.durationMs).toBeGreaterThanOrEqual(450);
    expect(s.durationMs).toBeLessThan(5000);
    expect(s.attempted).toBeGreaterThan(100);
    expect(s.attempted).toBeLessThanOrEqual(251);
  });

  it('--rate paces starts: 100 at 200/s take about half a second', async () => {
    const s = await run({ count: 100, rate: 200 });
    expect(s.succeeded).toBe(100);
    expect(s.durationMs).toBeGreaterThanOrEqual(490);
  });

  it('nothing listening: ECONNREFUSED from connect at iteration 1', async () => {
    const s = await run({ to: '127.0.0.1:9', count: 5 });
    expect(s.firstError).toEqual({ errno: 'ECONNREFUSED', code: 111, syscall: 'connect', atIteration: 1 });
    expect(s.attempted).toBe(1);
  });

  it('--no-stop-on-error counts every failure by errno', async () => {
    const s = await run({ to: '127.0.0.1:9', count: 20, concurrency: 4, stopOnError: false });
    expect(s.attempted).toBe(20);
    expect(s.failed).toBe(20);
    expect(s.errors).toEqual([{ errno: 'ECONNREFUSED', code: 111, syscall: 'connect', count: 20 }]);
  });

  it('server-first against a server that waits for the client: the wait times out (ETIMEDOUT in recv)', async () => {
    const s = await run({ close: 'server-first', count: 3, timeoutMs: 300 });
    expect(s.firstError).toMatchObject({ errno: 'ETIMEDOUT', syscall: 'recv', atIteration: 1 });
  });
});

describeNs('runChurn to several destinations', () => {
  let box: Sandbox;
  beforeAll(async () => {
    box = await createSandbox({
      hosts: 1,
      portRange: { low: 50000, high: 50099 },
      sysctls: { tcp_tw_reuse: 0 },
    });
  });
  afterAll(async () => box?.close());

  it('goes to them in turn: the ports run out per destination', async () => {
    // 100 ports per destination: with two, 200 connections fit and the 201st fails
    // (tcp_tw_reuse=0), each destination holding 100 TIME_WAIT sockets.
    const servers = await Promise.all(
      ['127.0.0.1:8080', '127.0.0.1:8081'].map((to) => startChurnServer(box.server, { to })),
    );
    try {
      const s = await remote(box.client, CHURN).runChurn({
        to: ['127.0.0.1:8080', '127.0.0.1:8081'],
        count: 400,
        timeoutMs: 5000,
      });
      expect(s.settings.to).toBe('127.0.0.1:8080,127.0.0.1:8081');
      expect(s.firstError).toMatchObject({ errno: 'EADDRNOTAVAIL', syscall: 'connect', atIteration: 201 });
      expect(s.succeeded).toBe(200);
      for (const port of [8080, 8081])
        expect(await clientTimeWait(box.client, port), `to :${port}`).toBe(100);
    } finally {
      await Promise.all(servers.map((x) => x.stop()));
    }
  });
});
