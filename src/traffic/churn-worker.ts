/**
 * Worker-thread entry of the churn engine: runs the hot loop (which never yields) off the caller's
 * event loop and posts progress, failures and the final result back. See churn.ts.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { runLoop, type LoopConfig } from './churn-loop.js';

interface WorkerInput {
  config: LoopConfig;
  stop: Int32Array;
}

const port = parentPort;
if (!port) throw new Error('churn-worker.js must run as a worker thread');
const { config, stop } = workerData as WorkerInput;
/** Failures are all counted in the result; only the first few travel as events. */
const MAX_FAILURE_EVENTS = 20;
let failureEvents = 0;
const result = runLoop(config, {
  stop,
  progress: (p) => port.postMessage({ type: 'progress', ...p }),
  failure: (f) => {
    if (failureEvents++ < MAX_FAILURE_EVENTS) port.postMessage({ type: 'failure', ...f });
  },
});
port.postMessage({ type: 'result', result }, [
  result.latencyCounts.buffer as ArrayBuffer,
  result.ports.buffer as ArrayBuffer,
]);
