/**
 * The one exit path (src/common/exit.ts) as a library sees it, in child processes: a release
 * runs on exit, on a signal nobody else handles (then the process dies of that signal), and not
 * on a signal the program handles itself (its own exit still runs it); hooks go once nothing is
 * registered. And the CLI's side: SIGHUP is exit 129 like SIGINT 130 and SIGTERM 143.
 */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { CLI } from './helpers/cli.js';
import { waitFor } from './helpers/sandbox.js';

const EXIT = new URL('../dist/common/exit.js', import.meta.url).href;

/** Run an ESM script that imported releaseOnExit; return its exit and output. */
function script(
  body: string,
  signal?: NodeJS.Signals,
): Promise<{ code: number | null; sig: string | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ['--input-type=module', '-e', `import { releaseOnExit } from ${JSON.stringify(EXIT)};\n${body}`],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (signal && out.includes('ready')) child.kill(signal);
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.on('close', (code, sig) => resolve({ code, sig, out }));
  });
}

describe('common/exit as a library', () => {
  it('runs a release on exit, once, newest first', async () => {
    const r = await script(`
      releaseOnExit(() => console.log('first'));
      releaseOnExit(() => console.log('second'));
    `);
    expect(r).toMatchObject({ code: 0, out: 'second\nfirst\n' });
  });

  it('on a signal nobody else handles: every release (two kinds, as a sandbox and a trace), then dies of it', async () => {
    // Before the one path, two modules each saw the other's listener and stepped aside: nobody acted.
    const r = await script(
      `releaseOnExit(() => console.log('sandbox'));
       releaseOnExit(() => console.log('instance'));
       console.log('ready'); setInterval(() => {}, 1000);`,
      'SIGTERM',
    );
    expect(r).toMatchObject({ code: null, sig: 'SIGTERM', out: 'ready\ninstance\nsandbox\n' });
  });

  it("a program's own handler decides; its exit still releases", async () => {
    const r = await script(
      `releaseOnExit(() => console.log('released'));
       process.on('SIGINT', () => { console.log('mine'); process.exit(3); });
       console.log('ready'); setInterval(() => {}, 1000);`,
      'SIGINT',
    );
    expect(r).toMatchObject({ code: 3, out: 'ready\nmine\nreleased\n' });
  });

  it('leaves no listener once every release is forgotten', async () => {
    const r = await script(`
      const before = ['SIGINT', 'SIGTERM', 'SIGHUP', 'exit'].map((s) => process.listenerCount(s));
      const forget = releaseOnExit(() => console.log('never'));
      const during = process.listenerCount('SIGHUP');
      forget();
      const after = ['SIGINT', 'SIGTERM', 'SIGHUP', 'exit'].map((s) => process.listenerCount(s));
      console.log(JSON.stringify({ before, during, after }));
    `);
    const { before, during, after } = JSON.parse(r.out) as {
      before: number[];
      during: number;
      after: number[];
    };
    expect(during).toBe(before[2]! + 1);
    expect(after).toEqual(before);
  });
});

describe('the CLI on SIGHUP', () => {
  it('says "interrupted" and exits 129 (here: ui, a command that waits for a signal)', async () => {
    const child = spawn(process.execPath, [CLI, 'ui', '--listen', '127.0.0.1:0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    try {
      expect(await waitFor(() => err.includes('twlab ui: open'), 30_000)).toBe(true);
      child.kill('SIGHUP');
      expect(await exited).toBe(129);
      expect(err).toMatch(/^twlab: interrupted$/m);
    } finally {
      child.kill('SIGKILL');
    }
  }, 40_000);
});
