/**
 * Plain-text tables for the terminal: a header, aligned columns, long cells wrapped at word
 * boundaries within a column's width. Generic: any command can print rows with it.
 */

export interface Column<Row> {
  header: string;
  /** The cell's text. */
  value(row: Row): string;
  align?: 'left' | 'right';
  /** Wrap cells wider than this (in characters); default: no wrapping. */
  maxWidth?: number;
}

/** Break text into lines of at most `width` characters, at spaces where possible. */
export function wrapText(text: string, width: number): string[] {
  const out: string[] = [];
  for (const paragraph of text.split('\n')) {
    let line = '';
    for (const word of paragraph.split(/\s+/).filter(Boolean)) {
      let w = word;
      while (w.length > width) {
        if (line) {
          out.push(line);
          line = '';
        }
        out.push(w.slice(0, width));
        w = w.slice(width);
      }
      if (!line) line = w;
      else if (line.length + 1 + w.length <= width) line += ` ${w}`;
      else {
        out.push(line);
        line = w;
      }
    }
    out.push(line);
  }
  return out;
}

function pad(text: string, width: number, align: 'left' | 'right'): string {
  const fill = ' '.repeat(Math.max(0, width - text.length));
  return align === 'right' ? fill + text : text + fill;
}

/** Render rows as a table: header, a rule, then one or more lines per row. */
export function renderTable<Row>(columns: readonly Column<Row>[], rows: readonly Row[]): string {
  const cells = rows.map((row) =>
    columns.map((c) => {
      const text = c.value(row);
      return c.maxWidth ? wrapText(text, c.maxWidth) : text.split('\n');
    }),
  );
  const widths = columns.map((c, i) =>
    Math.max(c.header.length, ...cells.map((r) => Math.max(...r[i]!.map((l) => l.length)))),
  );
  const line = (parts: string[]): string =>
    parts
      .map((p, i) => pad(p, widths[i]!, columns[i]!.align ?? 'left'))
      .join('  ')
      .trimEnd();
  const out = [line(columns.map((c) => c.header)), line(widths.map((w) => '-'.repeat(w)))];
  for (const r of cells) {
    const height = Math.max(...r.map((c) => c.length));
    for (let k = 0; k < height; k++) out.push(line(r.map((c) => c[k] ?? '')));
  }
  return `${out.join('\n')}\n`;
}
