/**
 * The lab's public API: the claims ledger, the fixes, and the runner that judges them on this
 * kernel, e.g. `await runLab({ claims: CLAIMS, fixes: FIXES, createSandbox, kernel: os.release() })`.
 */
export type * from './types.js';
export { CLAIMS, claimIds } from './registry.js';
export { FIXES, FIX_COUNT } from './fixes.js';
export {
  runLab,
  runClaims,
  runTasks,
  runTask,
  defaultJobs,
  defaultBudgetMs,
  describeSysctls,
  Limiter,
  type LabEvent,
  type LabTask,
  type LabRunOptions,
  type RunOptions,
  type SandboxFactory,
  type FixExperiment,
  type TaskOutcome,
} from './runner.js';
export { createProgress, type ProgressDisplay } from './runner-progress.js';
