/** The live progress: plain lines when stderr is not a terminal, redrawn lines when it is. */
import { describe, expect, it } from 'vitest';
import { createProgress } from '../../src/lab/runner-progress.js';

function sink(isTTY: boolean): { stream: NodeJS.WriteStream; text: () => string } {
  let out = '';
  const stream = {
    isTTY,
    columns: 80,
    write: (s: string) => ((out += s), true),
  } as unknown as NodeJS.WriteStream;
  return { stream, text: () => out };
}

describe('lab progress', () => {
  it('not a terminal: one plain line per start and end, with the crash reason', () => {
    const s = sink(false);
    const p = createProgress(s.stream, 2, false);
    p.onEvent({ type: 'start', id: 'S0-01', total: 2 });
    p.onEvent({ type: 'progress', id: 'S0-01', message: 'churning' });
    p.onEvent({ type: 'end', id: 'S0-01', verdict: 'confirmed', durationMs: 1234 });
    p.onEvent({ type: 'start', id: 'S0-02', total: 2 });
    p.onEvent({ type: 'end', id: 'S0-02', verdict: 'not-tested', durationMs: 10, error: 'boom' });
    p.finish();
    expect(s.text()).toBe(
      'lab: S0-01 started\nlab: [1/2] S0-01 confirmed (1.2 s)\nlab: S0-02 started\nlab: [2/2] S0-02 not-tested (0.0 s): boom\n',
    );
    expect(s.text()).not.toContain('\x1b[');
  });

  it('terminal: a counter and one line per running claim with its last message, cleared at the end', () => {
    const s = sink(true);
    const p = createProgress(s.stream, 3, true);
    p.onEvent({ type: 'start', id: 'S0-07', total: 3 });
    p.onEvent({ type: 'progress', id: 'S0-07', message: 'watching a TIME_WAIT socket' });
    p.onEvent({ type: 'start', id: 'S0-01', total: 3 });
    expect(s.text()).toContain('lab: 0/3 done, 2 running');
    expect(s.text()).toContain('watching a TIME_WAIT socket');
    p.onEvent({ type: 'end', id: 'S0-07', verdict: 'confirmed', durationMs: 60_000 });
    expect(s.text()).toContain('lab: 1/3 done, 1 running');
    p.finish();
    // The last frame (2 lines) is erased: cursor up 2, clear to the end of the screen.
    expect(s.text().endsWith('\x1b[2F\x1b[0J')).toBe(true);
  });
});
