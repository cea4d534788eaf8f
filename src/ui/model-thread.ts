/**
 * The dashboard runs the model in a worker thread with a time limit (model-worker.ts): the model
 * bounds its own work (src/model/budget.ts), and the limit is the backstop, on top of which a slow
 * run is terminated, not waited for. One prediction at a time: each may take a few hundred MB.
 */
import { Worker } from 'node:worker_threads';
import { RunError } from '../common/errors.js';
import { distPath } from '../common/paths.js';
import type { Prediction, PredictInput } from '../model/predict.js';

export type ModelJob =
  { kind: 'predict'; input: PredictInput } | { kind: 'forecasts'; inputs: PredictInput[] };

/** Wall-clock limit of one job: the model's stated bound (a minute of CPU) with room for a busy host. */
export const MODEL_TIME_LIMIT_MS = 120_000;

/** Thrown when a prediction is asked for while another one runs (the server answers 429). */
export class ModelBusyError extends RunError {
  override name = 'ModelBusyError';
}

let predicting = false;

function run<T>(job: ModelJob, limitMs: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const worker = new Worker(distPath('ui/model-worker.js'), { workerData: job });
    const timer = setTimeout(() => {
      void worker.terminate();
      reject(new RunError(`the model did not answer within ${limitMs / 1000} s; it was stopped`));
    }, limitMs);
    worker.once('message', (m: T) => {
      clearTimeout(timer);
      resolve(m);
    });
    worker.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    worker.once('exit', (code) => {
      clearTimeout(timer);
      reject(new RunError(`the model's worker exited (${code})`));
    });
  });
}

/** predict() in a worker, one at a time, stopped after `limitMs`. */
export async function predictOffThread(
  input: PredictInput,
  limitMs = MODEL_TIME_LIMIT_MS,
): Promise<Prediction> {
  if (predicting) throw new ModelBusyError('a prediction is already running; try again when it is done');
  predicting = true;
  try {
    return await run<Prediction>({ kind: 'predict', input }, limitMs);
  } finally {
    predicting = false;
  }
}

/** Each input's first failure (seconds, or null), in a worker. */
export function forecastsOffThread(
  inputs: PredictInput[],
  limitMs = MODEL_TIME_LIMIT_MS,
): Promise<Array<number | null>> {
  return run<Array<number | null>>({ kind: 'forecasts', inputs }, limitMs);
}
