/**
 * The claims ledger's data. A claim is a hypothesis from the seeds; its experiment measures what
 * the kernel does (in fresh sandboxes), and its verdict rule, a pure function of those
 * measurements, decides. Nothing here knows the answer in advance.
 */
import type { Sandbox, SandboxSpec } from '../sandbox/types.js';
import type { ClaimSource, Series, Verdict } from '../report/lab-report.js';

// The report's document (what `twlab lab --json` prints) is defined with its renderers.
export type {
  ClaimResult,
  ClaimSource,
  FixResult,
  LabReport,
  Series,
  Verdict,
} from '../report/lab-report.js';

/** What a verdict rule returns. */
export interface Judgement {
  verdict: Verdict;
  /** One or two sentences: why, in terms of the measured numbers. */
  explanation: string;
  /** For `depends`: the measured conditions under which it holds or not. */
  conditions?: string[];
}

/** Everything an experiment may use. Sandboxes made here are closed when the claim ends. */
export interface LabContext {
  /** `uname -r`. */
  kernel: string;
  /** A fresh sandbox, tracked and closed when the claim's run ends (even on failure). */
  sandbox(spec: SandboxSpec): Promise<Sandbox>;
  /** Aborted when the lab is interrupted or the claim's time budget is spent. */
  signal: AbortSignal;
  /** One short line of progress for the live display. */
  progress(message: string): void;
}

/**
 * M: the measurements, a plain JSON-able object. It is shown as the evidence, so name its
 * fields for a reader (e.g. { failedAtIteration: 101, errno: 'EADDRNOTAVAIL', timeWaitAtFailure: 100 }).
 * The runner adds `kernel` and `sysctlsSet` (every sysctl the claim's sandboxes set, with the
 * kernel's answer) to the evidence: a claim does not repeat them.
 */
export interface Claim<M extends object = Record<string, unknown>> {
  /** Contract id, e.g. "S0-01". */
  id: string;
  /** The claim in one short sentence, as the seed makes it. */
  claim: string;
  source: ClaimSource;
  /** Rough wall time, so the scheduler starts long claims first. */
  estimateMs: number;
  /** Hard time limit for run(); default: the runner's (4x the estimate, 90 s to 150 s). */
  budgetMs?: number;
  /** Measure. Throwing means the experiment could not run: the claim is shown as not-tested with the reason. */
  run(ctx: LabContext): Promise<M>;
  /** Decide from the measurements alone (pure; unit-tested with both outcomes). */
  judge(measured: M): Judgement;
  /** Time series to chart, if the experiment records any. */
  series?(measured: M): Series[];
}
