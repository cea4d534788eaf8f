/**
 * The model layer: Linux's ephemeral-port and TIME_WAIT rules as a deterministic event simulation
 * (simulate), and the prediction built on it (predict: first EADDRNOTAVAIL, steady TIME_WAIT,
 * sustainable rate, ranked fixes). Pure: no I/O; the CLI supplies the host's settings.
 */
export { simulate } from './simulate.js';
export type { Pool } from './simulate.js';
export {
  predict,
  checkPairs,
  forecastFirstFailureSec,
  maxSustainableRate,
  failureHorizonSec,
  scenarioOf,
  RATE_CAP,
  firstTroubleSec,
  parseNatPorts,
} from './predict.js';
export type {
  PredictInput,
  PredictFigures,
  FixPrediction,
  Prediction,
  PredictNat,
  NatFigures,
  NatPorts,
} from './predict.js';
export { Nat } from './nat.js';
export { boundedSimulate, WORK_BUDGET, SEARCH_WORK_BUDGET, PORT_SLOT_BUDGET } from './budget.js';
export type { Coarsening, BoundedRun } from './budget.js';
export { portGeometry, chooseConnectPort, chooseBindPort } from './port-choice.js';
export type { PortGeometry } from './port-choice.js';
export {
  TCP_TIMEWAIT_LEN_MS,
  DEFAULT_TW_REUSE_DELAY_MS,
  timeWaitExpiryMs,
  timeWaitMaxMs,
  twReuseApplies,
} from './kernel-rules.js';
export { CLOSE_ORDERS } from './types.js';
export type {
  CloseOrder,
  PortMode,
  ModelScenario,
  ModelResult,
  ModelSample,
  ModelEvent,
  ModelNat,
  ModelNatResult,
} from './types.js';
