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
