/**
 * Lab claim runs started from the dashboard: bounded (one at a time, a time budget per claim
 * from the runner), each with its event log kept for the page's event stream (server-sent events).
 */
import { release } from 'node:os';
import { createSandbox } from '../sandbox/index.js';
import { CLAIMS } from '../lab/registry.js';
import { runClaims, type LabEvent } from '../lab/runner.js';
import type { ClaimResult } from '../lab/types.js';

export type RunEvent = LabEvent | { type: 'result'; result: ClaimResult } | { type: 'failed'; error: string };

export interface Run {
  id: number;
  claim: string;
  events: RunEvent[];
  done: boolean;
  listeners: Set<(e: RunEvent) => void>;
}

export const MAX_RUNS_KEPT = 20;

export class RunManager {
  private readonly runs = new Map<number, Run>();
  private next = 1;
  constructor(private readonly maxConcurrent = 1) {}

  running(): number {
    return [...this.runs.values()].filter((r) => !r.done).length;
  }

  get(id: number): Run | undefined {
    return this.runs.get(id);
  }

  /** Start a claim; a string says why not (unknown claim, too many runs). */
  start(claimId: string): Run | string {
    const claim = CLAIMS.find((c) => c.id === claimId);
    if (!claim) return `unknown claim '${claimId}'`;
    if (this.running() >= this.maxConcurrent) return `a run is already going (at most ${this.maxConcurrent})`;
    const run: Run = { id: this.next++, claim: claim.id, events: [], done: false, listeners: new Set() };
    this.runs.set(run.id, run);
    for (const old of [...this.runs.keys()].slice(0, Math.max(0, this.runs.size - MAX_RUNS_KEPT)))
      if (this.runs.get(old)!.done) this.runs.delete(old);
    const emit = (e: RunEvent): void => {
      run.events.push(e);
      for (const l of run.listeners) l(e);
    };
    runClaims([claim], { createSandbox, kernel: release(), onEvent: emit }).then(
      (results) => {
        emit({ type: 'result', result: results[0]! });
        run.done = true;
      },
      (err: unknown) => {
        emit({ type: 'failed', error: err instanceof Error ? err.message : String(err) });
        run.done = true;
      },
    );
    return run;
  }
}
