/**
 * Worker-thread entry of the raw `twlab serve` engine: runs the loop (which never yields) off the
 * caller's event loop; counters go through shared memory, errors (the first few of each kind) and
 * the final error counts as messages. See server-raw.ts.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { runRawLoop, type RawLoopConfig } from './server-raw-loop.js';

interface WorkerInput {
  config: RawLoopConfig;
  stop: Int32Array;
  stats: Float64Array;
}

const port = parentPort;
if (!port) throw new Error('server-raw-worker.js must run as a worker thread');
const { config, stop, stats } = workerData as WorkerInput;
/** Error events per kind that travel to the caller; all are counted. */
const MAX_ERROR_EVENTS_PER_KIND = 20;
const sent: Record<string, number> = {};
port.postMessage({ type: 'ready' });
const errors = runRawLoop(config, {
  stop,
  stats,
  error: (name, code, syscall, message) => {
    sent[name] = (sent[name] ?? 0) + 1;
    if (sent[name] <= MAX_ERROR_EVENTS_PER_KIND)
      port.postMessage({ type: 'error', name, code, syscall, message });
  },
});
port.postMessage({ type: 'done', errors });
