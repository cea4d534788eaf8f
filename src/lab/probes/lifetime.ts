/**
 * How long one TIME_WAIT socket really lives: close a connection at the client (the server
 * closes on EOF), then watch the kernel's table until the entry is gone. Runs inside a sandbox
 * host via remote(), so the clock starts at the close itself.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { runChurn } from '../../traffic/churn.js';
import { tcpTable } from './tcp-table.js';

export interface LifetimeResult {
  /** The timer the kernel showed at the first look after the close (ms left). */
  timerAtFirstLookMs: number | null;
  /**
   * When the read that first saw the socket in TIME_WAIT had returned, ms after the close: an
   * upper bound on how long it had been in TIME_WAIT then (the server's FIN came in between).
   */
  firstLookAfterMs: number;
  /**
   * ms from the first sighting in TIME_WAIT (looked for every 5 ms) until the entry was gone;
   * null if it outlived maxMs.
   */
  observedLifetimeMs: number | null;
  /** Sampling interval: the lifetime is exact to within this. */
  resolutionMs: number;
  localPort: number | null;
}

export async function timeWaitLifetime(opts: {
  to: { address: string; port: number };
  maxMs: number;
  intervalMs: number;
}): Promise<LifetimeResult> {
  const r = await runChurn({ to: `${opts.to.address}:${opts.to.port}`, count: 1, timeoutMs: 5000 });
  const closedAt = Date.now();
  if (r.succeeded !== 1)
    throw new Error(`the connection failed: ${r.firstError?.syscall} ${r.firstError?.errno}`);
  let localPort: number | null = null;
  let timerAtFirstLookMs: number | null = null;
  let firstLookAfterMs = 0;
  for (;;) {
    const elapsed = Date.now() - closedAt;
    const tw = (await tcpTable()).filter(
      (e) =>
        e.state === 'TIME_WAIT' &&
        e.remotePort === opts.to.port &&
        (localPort === null || e.localPort === localPort),
    );
    if (localPort === null) {
      if (tw.length === 0) {
        // The server's FIN may not have arrived yet (FIN_WAIT2): look again shortly.
        if (elapsed > 10_000) throw new Error('no TIME_WAIT socket appeared within 10 s of the close');
        await sleep(5);
        continue;
      }
      localPort = tw[0]!.localPort;
      timerAtFirstLookMs = tw[0]!.timerLeftMs;
      // Taken when the read has returned: the kernel's timer was read at some moment before.
      firstLookAfterMs = Date.now() - closedAt;
    } else if (tw.length === 0) {
      return {
        timerAtFirstLookMs,
        firstLookAfterMs,
        observedLifetimeMs: elapsed - firstLookAfterMs,
        resolutionMs: opts.intervalMs,
        localPort,
      };
    }
    if (elapsed > opts.maxMs) {
      return {
        timerAtFirstLookMs,
        firstLookAfterMs,
        observedLifetimeMs: null,
        resolutionMs: opts.intervalMs,
        localPort,
      };
    }
    await sleep(opts.intervalMs);
  }
}
