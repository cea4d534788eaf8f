/** Types for scripts/validate-model.mjs (imported by test/model/validation.test.ts). */
export interface GridRow {
  id: string;
  kind: 'count' | 'time';
  what: string;
  hosts: 1 | 2;
  dests: number;
  fast?: boolean;
  slow?: boolean;
  mode?: 'connect' | 'bind-before-connect' | 'bind-no-port';
  engine?: 'churn';
  [key: string]: unknown;
}
export interface RowResult {
  row: GridRow;
  kernel: {
    first: { at: number; sec: number; errno: string } | null;
    twEnd: number;
    samples: [number, number][];
  };
  model: { first: number | null; firstSec: number | null; errno: string | null; twEnd: number };
  verdict: { ok: boolean; notes: string[]; worstSample: number };
}
export const GRID: GridRow[];
export const TOLERANCE: number;
export function validate(
  rows: GridRow[],
  log?: (line: string) => void,
): Promise<{ hz: number; results: RowResult[] }>;
export function renderTable(out: { hz: number; results: RowResult[] }): string;
export function judge(row: GridRow, kernel: unknown, model: unknown): RowResult['verdict'];

/** A NAT row (scripts/validate-model.mjs NAT_GRID). */
export interface NatRow {
  id: string;
  what: string;
  fast?: boolean;
  nat: { low: number; high: number };
  clientRange?: { low: number; high: number };
  fullyRandom?: boolean;
  close: 'client-first' | 'server-first' | 'rst';
  count: number;
  rate?: number;
  hold?: boolean;
  timeout?: number;
  ctTimeWait?: number;
  exact: string[];
}
/** The figures a NAT row compares, as the kernel and each model seed give them. */
interface NatFigures {
  succeeded: number;
  failure: string;
  firstReuse: number | null;
  collisions: number;
  kept: number;
  portsUsed: number;
  stalls: number;
  firstStall: number | null;
  heldTimeWait: number;
  heldTotal: number;
}
export interface NatKernelFigures extends NatFigures {
  attempted: number;
  held: { open: number; timeWait: number; close: number };
  insertFailed: number;
  synRetrans: number;
}
export interface NatModelRun extends NatFigures {
  drops: number;
}
export interface NatRowResult {
  row: NatRow;
  kernel: NatKernelFigures;
  runs: NatModelRun[];
  verdict: { ok: boolean; notes: string[] };
}
export const NAT_GRID: NatRow[];
export const NAT_SEEDS: number;
export const NAT_STALL_SLACK: number;
export function validateNat(
  rows: NatRow[],
  log?: (line: string) => void,
): Promise<{ hz: number; results: NatRowResult[]; loadAvg: { start: string; end: string } }>;
export function judgeNat(row: NatRow, kernel: NatKernelFigures, runs: NatModelRun[]): NatRowResult['verdict'];
export function renderNatTable(out: {
  results: NatRowResult[];
  loadAvg?: { start: string; end: string };
}): string;
