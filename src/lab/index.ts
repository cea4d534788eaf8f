/**
 * The lab's public API: the claims ledger, the fixes, and the runner that judges them on this
 * kernel, e.g. `await runLab({ claims: CLAIMS, fixes: FIXES, createSandbox, kernel: os.release() })`
 * (the NAT family: `CLAIMS.filter((c) => isNatClaim(c.id))` with `NAT_FIXES`).
 * The scheduler's parts (task runner, limiter, budgets, progress display) stay internal.
 */
export type * from './types.js';
export { CLAIMS, claimIds, isNatClaim, NAT_PREFIX } from './registry.js';
export { FIXES, FIX_COUNT, NAT_FIXES, NAT_FIX_COUNT } from './fixes.js';
export {
  runLab,
  runClaims,
  type LabEvent,
  type LabRunOptions,
  type RunOptions,
  type SandboxFactory,
  type FixExperiment,
} from './runner.js';
