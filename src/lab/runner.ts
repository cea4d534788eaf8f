/**
 * Runs lab tasks (claims and fixes): each in its own fresh sandboxes, independent tasks in
 * parallel, longest first, each within a time budget. A task that throws or overruns becomes
 * `not-tested` with the reason; its sandboxes are closed whatever happens.
 */
import { availableParallelism } from 'node:os';
import { messageOf } from '../common/errors.js';
import type { Sandbox, SandboxSpec, SysctlOutcome } from '../sandbox/types.js';
import type { Claim, ClaimResult, FixResult, LabContext, LabReport } from './types.js';

/** What the runner needs to open sandboxes; src/sandbox's createSandbox in real runs. */
export type SandboxFactory = (spec: SandboxSpec) => Promise<Sandbox>;

/** Live progress, for the display on stderr. */
export type LabEvent =
  | { type: 'start'; id: string; total: number }
  | { type: 'progress'; id: string; message: string }
  | { type: 'end'; id: string; verdict: string; durationMs: number; error?: string };

/** One unit of scheduled work: a claim's experiment or one fix's measurement. */
export interface LabTask<R> {
  id: string;
  estimateMs: number;
  /** Hard limit for this task; default: see defaultBudgetMs. */
  budgetMs?: number;
  run(ctx: LabContext): Promise<R>;
}

/** The outcome of one task, with the sandboxes it opened (for the evidence). */
export type TaskOutcome<R> =
  | { ok: true; value: R; durationMs: number; sysctls: SysctlOutcome[] }
  | { ok: false; error: string; durationMs: number; sysctls: SysctlOutcome[] };

export interface RunOptions {
  createSandbox: SandboxFactory;
  kernel: string;
  /** How many tasks run at once. */
  jobs?: number;
  /** Aborts every running task (e.g. Ctrl-C). */
  signal?: AbortSignal;
  onEvent?: (event: LabEvent) => void;
  /**
   * Sandboxes being created at once, across all tasks (default 2 x cores). Creating one starts a
   * Node agent per host, a burst of CPU; spreading the bursts keeps a loaded machine from missing
   * the agents' start deadline, while the experiments themselves still overlap.
   */
  sandboxStarts?: number | Limiter;
}

/** At most `n` holders at a time; the others wait in order. */
export class Limiter {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(readonly n: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.n) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

function limiterOf(opts: RunOptions): Limiter {
  const s = opts.sandboxStarts;
  return s instanceof Limiter ? s : new Limiter(s ?? availableParallelism() * 2);
}

/**
 * Default parallelism. Most lab experiments spend their time waiting on kernel timers
 * (TIME_WAIT expiry, a 1 s retry, polling the socket table), not on the CPU: the three claims that
 * wait out a 60 s TIME_WAIT would otherwise hold half the slots for the whole run. Four per core
 * plus two keeps those waits overlapping while the churn loops still share the cores.
 */
export function defaultJobs(): number {
  return availableParallelism() * 4 + 2;
}

/**
 * A task's budget: four times its estimate, at least 90 s (a 2-core machine shared with other
 * work can slow the churn loops and sandbox starts tenfold), at most 150 s. It exists to end a
 * hung experiment, not to hurry a slow one.
 */
export function defaultBudgetMs(estimateMs: number): number {
  return Math.min(150_000, Math.max(90_000, estimateMs * 4));
}

/**
 * The budget of a claim that makes several agent calls or process starts in a row: on a loaded
 * 2-core machine such a claim has taken 3-4 times its unloaded time, so it gets more than the
 * default's 90 s floor before it counts as hung.
 */
export const SEVERAL_STEPS_BUDGET_MS = 120_000;

/** Sysctls as shown in evidence: "net.ipv4.tcp_tw_reuse=1" or "...=2 (not-present)". */
export function describeSysctls(outcomes: readonly SysctlOutcome[]): string[] {
  const seen = new Set<string>();
  for (const o of outcomes) {
    const value = o.status === 'applied' ? (o.value ?? o.requested) : o.requested;
    const suffix = o.status === 'applied' ? '' : ` (${o.status}${o.reason ? `: ${o.reason}` : ''})`;
    seen.add(`${o.key}=${value}${suffix}`);
  }
  return [...seen];
}

class BudgetSpent extends Error {}

/** Run one task with its own sandboxes, signal and budget. Never throws. */
export async function runTask<R>(task: LabTask<R>, opts: RunOptions): Promise<TaskOutcome<R>> {
  const started = Date.now();
  const controller = new AbortController();
  const sandboxes: Sandbox[] = [];
  const sysctls: SysctlOutcome[] = [];
  let closed = false;
  const starts = limiterOf(opts);
  const onOuterAbort = (): void => controller.abort(new Error('the lab was interrupted'));
  if (opts.signal?.aborted) onOuterAbort();
  opts.signal?.addEventListener('abort', onOuterAbort, { once: true });

  const ctx: LabContext = {
    kernel: opts.kernel,
    signal: controller.signal,
    progress: (message) => opts.onEvent?.({ type: 'progress', id: task.id, message }),
    sandbox: async (spec) => {
      if (controller.signal.aborted || closed) throw new Error('the task already ended');
      const sb = await starts.run(() => opts.createSandbox(spec));
      sandboxes.push(sb);
      sysctls.push(...sb.sysctls);
      // A sandbox that arrives after the task ended (budget spent meanwhile) is closed at once.
      if (closed) await sb.close();
      return sb;
    },
  };

  const budget = task.budgetMs ?? defaultBudgetMs(task.estimateMs);
  let timer: NodeJS.Timeout | undefined;
  const overrun = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new BudgetSpent(`time budget of ${(budget / 1000).toFixed(0)} s spent`);
      controller.abort(err);
      reject(err);
    }, budget);
  });
  const interrupted = new Promise<never>((_, reject) => {
    controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true });
  });
  overrun.catch(() => undefined);
  interrupted.catch(() => undefined);

  try {
    const value = await Promise.race([task.run(ctx), overrun, interrupted]);
    return { ok: true, value, durationMs: Date.now() - started, sysctls };
  } catch (err) {
    return { ok: false, error: messageOf(err), durationMs: Date.now() - started, sysctls };
  } finally {
    clearTimeout(timer);
    closed = true;
    opts.signal?.removeEventListener('abort', onOuterAbort);
    if (!controller.signal.aborted) controller.abort(new Error('the task ended'));
    await Promise.allSettled(sandboxes.map((sb) => sb.close()));
  }
}

/**
 * Run tasks at most `jobs` at a time, longest estimate first; results come back in input order.
 */
export async function runTasks<R>(
  tasks: readonly LabTask<R>[],
  opts: RunOptions,
  onDone?: (task: LabTask<R>, outcome: TaskOutcome<R>) => void,
): Promise<TaskOutcome<R>[]> {
  const jobs = Math.max(1, opts.jobs ?? defaultJobs());
  // One limiter for every task of this run.
  opts = { ...opts, sandboxStarts: limiterOf(opts) };
  const order = tasks.map((t, i) => ({ t, i })).sort((a, b) => b.t.estimateMs - a.t.estimateMs);
  const results = new Array<TaskOutcome<R>>(tasks.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < order.length) {
      const { t, i } = order[next++]!;
      opts.onEvent?.({ type: 'start', id: t.id, total: tasks.length });
      const outcome = await runTask(t, opts);
      results[i] = outcome;
      onDone?.(t, outcome);
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, order.length) }, worker));
  return results;
}

/** A claim's run as a task, and its outcome judged into a ClaimResult. */
export function claimTask(claim: Claim<object>): LabTask<object> {
  return {
    id: claim.id,
    estimateMs: claim.estimateMs,
    ...(claim.budgetMs ? { budgetMs: claim.budgetMs } : {}),
    run: (ctx) => claim.run(ctx),
  };
}

export function judgeOutcome(
  claim: Claim<object>,
  outcome: TaskOutcome<object>,
  kernel: string,
): ClaimResult {
  const base = {
    id: claim.id,
    claim: claim.claim,
    source: claim.source,
    durationMs: outcome.durationMs,
  };
  const setting = { kernel, sysctlsSet: describeSysctls(outcome.sysctls) };
  if (!outcome.ok) {
    return {
      ...base,
      verdict: 'not-tested',
      evidence: setting,
      conditions: [],
      explanation: `The experiment could not be run: ${outcome.error}.`,
      series: [],
      error: outcome.error,
    };
  }
  try {
    const j = claim.judge(outcome.value);
    return {
      ...base,
      verdict: j.verdict,
      evidence: { ...setting, ...(outcome.value as Record<string, unknown>) },
      conditions: j.conditions ?? [],
      explanation: j.explanation,
      series: claim.series?.(outcome.value) ?? [],
    };
  } catch (err) {
    const error = `its verdict rule failed: ${messageOf(err)}`;
    return {
      ...base,
      verdict: 'not-tested',
      evidence: { ...setting, ...(outcome.value as Record<string, unknown>) },
      conditions: [],
      explanation: `The measurement ran but ${error}.`,
      series: [],
      error,
    };
  }
}

/** A fix's measurement, scheduled like a claim. */
export interface FixExperiment {
  id: string;
  name: string;
  source: string;
  estimateMs: number;
  run(ctx: LabContext): Promise<FixResult>;
}

/** A fix whose measurement crashed: shown with the reason, never dropped. */
export function unmeasuredFix(fix: FixExperiment, error: string): FixResult {
  return {
    id: fix.id,
    name: fix.name,
    source: fix.source,
    connectionsBeforeFailure: null,
    attempted: 0,
    connectionsPerSecond: 0,
    firstError: null,
    costs: {},
    note: `not measured: ${error}`,
    error,
  };
}

export interface LabRunOptions extends RunOptions {
  claims: readonly Claim<object>[];
  fixes: readonly FixExperiment[];
}

/**
 * The whole lab: claims and fixes share one schedule, so fix measurements fill the gaps while
 * long claims wait out TIME_WAIT.
 */
export async function runLab(opts: LabRunOptions): Promise<LabReport> {
  const started = Date.now();
  const claimResults = new Map<string, ClaimResult>();
  const fixResults = new Map<string, FixResult>();
  const tasks: LabTask<object>[] = [
    ...opts.claims.map(claimTask),
    ...opts.fixes.map((f) => ({
      id: `fix:${f.id}`,
      estimateMs: f.estimateMs,
      run: (ctx: LabContext) => f.run(ctx),
    })),
  ];
  await runTasks(tasks, opts, (task, outcome) => {
    const claim = opts.claims.find((c) => c.id === task.id);
    if (claim) {
      const r = judgeOutcome(claim, outcome, opts.kernel);
      claimResults.set(claim.id, r);
      opts.onEvent?.({
        type: 'end',
        id: task.id,
        verdict: r.verdict,
        durationMs: r.durationMs,
        ...(r.error ? { error: r.error } : {}),
      });
      return;
    }
    const fix = opts.fixes.find((f) => `fix:${f.id}` === task.id)!;
    const r = outcome.ok ? (outcome.value as FixResult) : unmeasuredFix(fix, outcome.error);
    fixResults.set(fix.id, r);
    opts.onEvent?.({
      type: 'end',
      id: task.id,
      verdict: r.error ? 'not-tested' : 'measured',
      durationMs: outcome.durationMs,
      ...(r.error ? { error: r.error } : {}),
    });
  });
  return {
    kernel: opts.kernel,
    startedAt: new Date(started).toISOString(),
    durationMs: Date.now() - started,
    claims: opts.claims.map((c) => claimResults.get(c.id)!),
    fixes: opts.fixes.map((f) => fixResults.get(f.id)!),
  };
}

/** Run claims only (no fixes); results in the claims' order. */
export async function runClaims(claims: readonly Claim<object>[], opts: RunOptions): Promise<ClaimResult[]> {
  return (await runLab({ ...opts, claims, fixes: [] })).claims;
}
