/**
 * The lab's report as a document: what `twlab lab --json` prints (docs/lab.schema.json) and what
 * the terminal and HTML renderers read. Defined here, below the lab, so the renderers never import
 * the lab that produces it.
 */

export type Verdict = 'confirmed' | 'refuted' | 'depends' | 'not-applicable' | 'not-tested';

export interface ClaimSource {
  /** Seed file name, e.g. 000_27c8c704027fe916.txt. */
  seed: string;
  /** Where in it: "post", "comment 1 (Kristof Provost)", "English article, section ...". */
  where: string;
  /** The words of the seed the claim is taken from (short). */
  quote: string;
}

/** A time series recorded during an experiment, for charts (HTML report). */
export interface Series {
  name: string;
  unit: string;
  /** [milliseconds since experiment start, value] */
  points: Array<[number, number]>;
}

export interface ClaimResult {
  id: string;
  claim: string;
  source: ClaimSource;
  verdict: Verdict;
  evidence: Record<string, unknown>;
  conditions: string[];
  explanation: string;
  durationMs: number;
  series: Series[];
  /** Set when the experiment crashed (verdict not-tested): what failed. */
  error?: string;
}

/** A remedy for the seed's failing client, measured the same way for every fix. */
export interface FixResult {
  id: string;
  name: string;
  /** Where it was proposed (seed and place), or "known practice". */
  source: string;
  /** Connections that succeeded before the first failure; null if none failed within the bound. */
  connectionsBeforeFailure: number | null;
  /** The bound of the run (count), so "no failure" reads as "none within N". */
  attempted: number;
  connectionsPerSecond: number;
  firstError: string | null;
  /** What it costs, measured: RSTs seen, payload lost, TIME_WAIT moved to the server, ... */
  costs: Record<string, number | string | boolean>;
  /** One sentence for the table. */
  note: string;
  /** Set when the measurement crashed: what failed (the row then shows no numbers). */
  error?: string;
}

export interface LabReport {
  kernel: string;
  startedAt: string;
  durationMs: number;
  claims: ClaimResult[];
  fixes: FixResult[];
}

/** The close variants recorded for the report's sequence diagrams. */
export type CloseVariant = 'client-first' | 'server-first' | 'simultaneous' | 'rst';

/** One state change of one side, times in ms since the variant's trace started. */
export interface SideTransition {
  side: 'client' | 'server';
  atMs: number;
  from: string;
  to: string;
  /** tracepoint (sock:inet_sock_set_state) or sock_diag (a minisocket phase seen in the table). */
  source: 'tracepoint' | 'sock_diag';
}

export interface CloseSequence {
  variant: CloseVariant;
  /** What the program did, in words. */
  action: string;
  clientPort: number;
  serverPort: number;
  transitions: SideTransition[];
  /** Set when this variant could not be recorded. */
  error?: string;
}
