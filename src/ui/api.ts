/**
 * The dashboard's data: the census of this namespace with the model's forecast per destination,
 * and predict for the form. All computed on request, from the kernel and the model.
 */
import { takeCensus, type CensusResult } from '../observe/census.js';
import { readSysctl } from '../observe/sysctl.js';
import { predict, type PredictInput, type Prediction } from '../model/predict.js';
import { UsageError } from '../common/errors.js';

export interface Forecast {
  remote: string;
  local: string;
  /** The model's seconds to the first EADDRNOTAVAIL at the destination's measured rate; null: never within the horizon. */
  modelFirstFailureSec: number | null;
  horizonSec: number;
}

export interface DashboardCensus {
  census: CensusResult;
  forecasts: Forecast[];
}

const FORECAST_HORIZON_SEC = 120;
/** The model runs for at most this many destinations per refresh (the busiest with a rate). */
const FORECASTS = 3;

function twReuse(): 0 | 1 | 2 {
  const v = Number(readSysctl('tcp_tw_reuse') ?? 2);
  return v === 0 || v === 1 ? v : 2;
}

/** A census (this namespace's when omitted) with the model's forecasts at that tcp_tw_reuse. */
export function dashboardCensus(
  census: CensusResult = takeCensus({ top: 20 }),
  reuse = twReuse(),
): DashboardCensus {
  const forecasts = census.pressure
    .filter((p) => p.ratePerSec > 0)
    .slice(0, FORECASTS)
    .map((p) => {
      const pred = predict({
        rate: p.ratePerSec,
        portRange: { low: census.portRange.low, high: census.portRange.high },
        reservedPorts: census.portRange.reserved,
        twReuse: reuse,
        loopback: p.remote.startsWith('127.') || p.remote.startsWith('[::1]'),
        destinations: 1,
        sourceAddresses: 1,
        portMode: 'connect',
        close: 'client-first',
        durationSec: FORECAST_HORIZON_SEC,
      });
      return {
        remote: p.remote,
        local: p.local,
        modelFirstFailureSec: pred.firstFailureSec,
        horizonSec: FORECAST_HORIZON_SEC,
      };
    });
  return { census, forecasts };
}

const num = (v: unknown, what: string, min: number, max: number): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max)
    throw new UsageError(`${what}: '${String(v)}' is out of range (accepted: ${min} to ${max})`);
  return n;
};

/** The form's fields -> predict, each checked (a UsageError names the bad one). */
export function predictFromForm(body: Record<string, unknown>): Prediction {
  const low = num(body['low'] ?? 32768, 'low', 1, 65535);
  const high = num(body['high'] ?? 60999, 'high', low, 65535);
  const close = String(body['close'] ?? 'client-first');
  if (!['client-first', 'server-first', 'rst'].includes(close))
    throw new UsageError(`close: '${close}' is not accepted (accepted: client-first, server-first, rst)`);
  const input: PredictInput = {
    rate: num(body['rate'], 'rate', 0.001, 1_000_000),
    portRange: { low, high },
    twReuse: num(body['twReuse'] ?? 0, 'twReuse', 0, 2) as 0 | 1 | 2,
    loopback: body['loopback'] === true || body['loopback'] === 'true',
    destinations: Math.round(num(body['destinations'] ?? 1, 'destinations', 1, 10_000)),
    sourceAddresses: Math.round(num(body['sourceAddresses'] ?? 1, 'sourceAddresses', 1, 256)),
    portMode: 'connect',
    close: close as PredictInput['close'],
    durationSec: num(body['durationSec'] ?? 120, 'durationSec', 1, 3600),
  };
  return predict(input);
}
