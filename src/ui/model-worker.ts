/**
 * Worker thread for the dashboard's model runs (model-thread.ts): one job, one answer, then the
 * thread ends. Off the request path, so a long prediction never holds up /api/census.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { forecastFirstFailureSec, predict, type PredictInput } from '../model/predict.js';
import type { ModelJob } from './model-thread.js';

const job = workerData as ModelJob;
parentPort!.postMessage(
  job.kind === 'predict'
    ? predict(job.input)
    : job.inputs.map((i: PredictInput) => forecastFirstFailureSec(i)),
);
