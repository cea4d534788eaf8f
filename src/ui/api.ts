/**
 * The dashboard's data: the census of this namespace with the model's forecast per destination,
 * and predict for the form. All computed on request, from the kernel and the model; the model
 * runs in a worker thread (model-thread.ts), never on the request path.
 */
import { takeCensus, type CensusResult } from '../observe/census.js';
import { readSysctl } from '../observe/sysctl.js';
import { checkPairs, parseNatPorts, type PredictInput, type PredictNat } from '../model/predict.js';
import { DEFAULT_CT_TIME_WAIT_SEC } from '../model/kernel-rules.js';
import { CLOSE_ORDERS } from '../model/types.js';
import { UsageError } from '../common/errors.js';
import { fieldText, parseChoice, parseIntInRange, parseNumberInRange, show } from '../common/parse.js';
import { forecastsOffThread } from './model-thread.js';

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
export async function dashboardCensus(
  census: CensusResult = takeCensus({ top: 20 }),
  reuse = twReuse(),
): Promise<DashboardCensus> {
  const busiest = census.pressure.filter((p) => p.ratePerSec > 0).slice(0, FORECASTS);
  const inputs: PredictInput[] = busiest.map((p) => ({
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
  }));
  const failures = inputs.length === 0 ? [] : await forecastsOffThread(inputs);
  const forecasts = busiest.map((p, i) => ({
    remote: p.remote,
    local: p.local,
    modelFirstFailureSec: failures[i] ?? null,
    horizonSec: FORECAST_HORIZON_SEC,
  }));
  return { census, forecasts };
}

/** A numeric form field through the CLI's parser (so "0x10", "1e3" and [5] are refused alike). */
const num = (
  body: Record<string, unknown>,
  key: string,
  fallback: number | undefined,
  min: number,
  max: number,
): number => parseNumberInRange(fieldText(body[key] ?? fallback, key), key, min, max);
const int = (
  body: Record<string, unknown>,
  key: string,
  fallback: number,
  min: number,
  max: number,
): number => parseIntInRange(fieldText(body[key] ?? fallback, key), key, min, max);

/** The form's fields as a predict input, each checked (a UsageError names the bad one). */
export function predictInputFromForm(body: Record<string, unknown>): PredictInput {
  const low = int(body, 'low', 32768, 1, 65535);
  const high = int(body, 'high', 60999, low, 65535);
  const loopback = body['loopback'] ?? false;
  if (typeof loopback !== 'boolean' && loopback !== 'true' && loopback !== 'false')
    throw new UsageError(
      `loopback: ${show(JSON.stringify(loopback))} is not accepted (accepted: true, false)`,
    );
  const destinations = int(body, 'destinations', 1, 1, 10_000);
  const sourceAddresses = int(body, 'sourceAddresses', 1, 1, 256);
  checkPairs(destinations, sourceAddresses, 'destinations x sourceAddresses');
  return {
    rate: num(body, 'rate', undefined, 0.001, 1_000_000),
    portRange: { low, high },
    twReuse: Number(
      parseChoice(fieldText(body['twReuse'] ?? 0, 'twReuse'), 'twReuse', ['0', '1', '2'] as const),
    ) as 0 | 1 | 2,
    loopback: loopback === true || loopback === 'true',
    destinations,
    sourceAddresses,
    portMode: 'connect',
    close: parseChoice(fieldText(body['close'] ?? 'client-first', 'close'), 'close', CLOSE_ORDERS),
    durationSec: num(body, 'durationSec', 120, 1, 3600),
    ...natFromForm(body),
  };
}

/** A boolean field: true/false, or the strings a form sends. */
function bool(body: Record<string, unknown>, key: string): boolean {
  const v = body[key] ?? false;
  if (typeof v !== 'boolean' && v !== 'true' && v !== 'false')
    throw new UsageError(`${key}: ${show(JSON.stringify(v))} is not accepted (accepted: true, false)`);
  return v === true || v === 'true';
}

/** The NAT fields (natPorts empty or absent: no NAT), through the CLI's own parsers. */
function natFromForm(body: Record<string, unknown>): { nat?: PredictNat } {
  const text = body['natPorts'] === undefined ? '' : fieldText(body['natPorts'], 'natPorts');
  if (text.trim() === '') return {};
  const { ports, low } = parseNatPorts(text, 'natPorts');
  return {
    nat: {
      ports,
      low,
      fullyRandom: bool(body, 'natFullyRandom'),
      conntrackTimeWaitSec: int(body, 'conntrackTwTimeout', DEFAULT_CT_TIME_WAIT_SEC, 0, 2_147_483),
    },
  };
}
