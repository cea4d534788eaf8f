/**
 * The main thread's side of histogram-worker.ts: one long-lived, unref'd worker; requests answered
 * in order. Where a worker cannot start (e.g. run from TypeScript sources), the dump runs inline.
 */
import { Worker } from 'node:worker_threads';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { timeWaitHistogram, type BucketCounts } from './time-wait-histogram.js';

type Source = 'auto' | 'netlink' | 'procfs';

export class HistogramThread {
  private worker: Worker | undefined;
  private next = 1;
  private readonly waiting = new Map<number, { resolve(c: BucketCounts): void; reject(e: Error): void }>();

  constructor(private readonly source?: Source) {
    const file = fileURLToPath(new URL('./histogram-worker.js', import.meta.url));
    if (!existsSync(file)) return;
    this.worker = new Worker(file);
    this.worker.unref();
    this.worker.on('message', (m: { id: number; counts?: BucketCounts; error?: string }) => {
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (m.error !== undefined) w?.reject(new Error(m.error));
      else w?.resolve(m.counts!);
    });
    this.worker.on('error', (err) => {
      for (const w of this.waiting.values()) w.reject(err);
      this.waiting.clear();
      this.worker = undefined;
    });
  }

  /** Start the dump now; the promise settles when it is done. */
  request(): Promise<BucketCounts> {
    if (!this.worker) {
      try {
        return Promise.resolve(timeWaitHistogram(this.source));
      } catch (err) {
        return Promise.reject(err as Error);
      }
    }
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker!.postMessage({ id, ...(this.source ? { source: this.source } : {}) });
    });
  }

  async close(): Promise<void> {
    await this.worker?.terminate();
    this.worker = undefined;
  }
}
