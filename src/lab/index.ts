/**
 * The lab's public API: the claims ledger, the fixes, and the runner that judges them on this
 * kernel, e.g. `await runLab({ claims: CLAIMS, fixes: FIXES, createSandbox, kernel: os.release() })`.
 * The scheduler's parts (task runner, limiter, budgets, progress display) stay internal.
 */
export type * from './types.js';
export { CLAIMS, claimIds } from './registry.js';
export { FIXES, FIX_COUNT } from './fixes.js';
export {
  runLab,
  runClaims,
  type LabEvent,
  type LabRunOptions,
  type RunOptions,
  type SandboxFactory,
  type FixExperiment,
} from './runner.js';
