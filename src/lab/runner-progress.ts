/**
 * The lab's live progress on stderr. On a terminal: one line per running task, redrawn in place,
 * under a done/total counter. Otherwise: one plain line when a task starts and when it ends.
 */
import type { LabEvent } from './runner.js';

export interface ProgressDisplay {
  onEvent(event: LabEvent): void;
  /** Clear the live lines (before the report is printed). */
  finish(): void;
}

interface Running {
  started: number;
  message: string;
}

export function createProgress(
  stream: NodeJS.WriteStream = process.stderr,
  total: number,
  live = stream.isTTY === true,
): ProgressDisplay {
  const running = new Map<string, Running>();
  let done = 0;
  let drawn = 0;
  let timer: NodeJS.Timeout | undefined;

  const draw = (): void => {
    const width = Math.max(40, (stream.columns ?? 100) - 1);
    const lines = [`lab: ${done}/${total} done, ${running.size} running`];
    const now = Date.now();
    for (const [id, r] of running) {
      const secs = ((now - r.started) / 1000).toFixed(0).padStart(3);
      lines.push(`  ${id.padEnd(14)} ${secs} s  ${r.message}`.slice(0, width));
    }
    let out = drawn > 0 ? `\x1b[${drawn}F` : '';
    out += lines.map((l) => `\x1b[2K${l}`).join('\n') + '\n';
    // Erase lines left over from a taller previous frame.
    for (let k = lines.length; k < drawn; k++) out += '\x1b[2K\n';
    if (drawn > lines.length) out += `\x1b[${drawn - lines.length}F`;
    stream.write(out);
    drawn = lines.length;
  };

  return {
    onEvent(event) {
      if (event.type === 'start') {
        running.set(event.id, { started: Date.now(), message: 'opening its sandbox' });
        if (!live) stream.write(`lab: ${event.id} started\n`);
      } else if (event.type === 'progress') {
        const r = running.get(event.id);
        if (r) r.message = event.message;
      } else {
        running.delete(event.id);
        done++;
        if (!live || event.error) {
          const why = event.error ? `: ${event.error}` : '';
          const line = `lab: [${done}/${total}] ${event.id} ${event.verdict} (${(event.durationMs / 1000).toFixed(1)} s)${why}\n`;
          if (live && drawn > 0) {
            stream.write(`\x1b[${drawn}F\x1b[0J`);
            drawn = 0;
          }
          stream.write(line);
        }
      }
      if (live) {
        timer ??= setInterval(draw, 250);
        timer.unref();
        draw();
      }
    },
    finish() {
      if (timer) clearInterval(timer);
      if (live && drawn > 0) stream.write(`\x1b[${drawn}F\x1b[0J`);
      drawn = 0;
    },
  };
}
