/**
 * SIGKILL cannot be handled, so a killed tracer leaves its tracefs instance (events enabled, a
 * ring buffer of up to 8 MB per CPU). The next run must tell it from a live tracer's and remove
 * it, wherever the dead tracer ran: on the host, inside `lab --html`, or in a sandbox's pid
 * namespace (where its pid means nothing to a run outside).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect } from 'vitest';
import { CLI, runCli } from '../helpers/cli.js';
import { describeNs, descendants, itNs, procInfo, waitFor } from '../helpers/sandbox.js';

const INSTANCES = '/sys/kernel/tracing/instances';
const haveTracefs = existsSync(INSTANCES) && process.getuid?.() === 0;
const tmp = mkdtempSync(join(tmpdir(), 'twlab-leftovers-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** twlab's instances labelled with one of these pids (`twlab-<pid as /proc shows it>-<random>`). */
function instancesOf(pids: readonly number[]): string[] {
  return readdirSync(INSTANCES).filter((n) => pids.some((p) => n.startsWith(`twlab-${p}-`)));
}

/**
 * Start `twlab ARGS`, wait until the process `owner` picks (the parent itself, or one of its
 * descendants) has an instance, SIGKILL the parent, and check the instance is still there, then
 * that the next `twlab trace` removes it.
 */
async function killThenNextRunRemoves(args: string[], owner: (parent: number) => number | undefined) {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise((resolve) => child.on('exit', resolve));
  try {
    let pid: number | undefined;
    const traced = await waitFor(
      () =>
        child.exitCode !== null || ((pid = owner(child.pid!)) !== undefined && instancesOf([pid]).length > 0),
      60_000,
      50,
    );
    expect(traced && child.exitCode === null, `no instance of ${args.join(' ')}: ${stderr}`).toBe(true);
    const left = instancesOf([pid!]);
    child.kill('SIGKILL');
    await exited;
    // The owner is gone too (the sandbox's pid namespace dies with its parent) ...
    expect(await waitFor(() => procInfo(pid!) === undefined, 10_000)).toBe(true);
    // ... and its instance stays until someone removes it: the fault the next run repairs.
    expect(left.filter((n) => existsSync(join(INSTANCES, n)))).toEqual(left);
    const next = await runCli(['trace', '--duration', '0.1', '--port', '9']);
    expect(next.code, next.stderr).toBe(0);
    expect(left.filter((n) => existsSync(join(INSTANCES, n)))).toEqual([]);
  } finally {
    child.kill('SIGKILL');
  }
}

/**
 * The tracer itself (node), not the nsenter/setpriv that started it with the same arguments, nor
 * a child forked by `twlab sandbox` that has not exec'd yet (it still shows the sandbox's argv).
 */
const isTrace = (cmdline: string): boolean =>
  cmdline.startsWith(`${process.execPath} `) &&
  cmdline.includes('main.js trace') &&
  !cmdline.includes(' sandbox ');

/** Without tracefs (or root) there is nothing to leave behind: skipped, like tracefs.test.ts. */
const describeTraced = haveTracefs ? describeNs : describe.skip;

describeTraced('a SIGKILLed tracer leaves an instance; the next run removes it', () => {
  itNs(
    'twlab trace',
    () => killThenNextRunRemoves(['trace', '--duration', '60', '--port', '9'], (p) => p),
    90_000,
  );

  itNs(
    'twlab lab --html while it traces the close sequences',
    () => killThenNextRunRemoves(['lab', '--only', 'S0-04', '--html', join(tmp, 'report.html')], (p) => p),
    90_000,
  );

  itNs(
    'twlab sandbox -- twlab trace (the tracer in its own pid namespace)',
    () =>
      killThenNextRunRemoves(
        ['sandbox', '--', process.execPath, CLI, 'trace', '--duration', '60', '--port', '9'],
        (p) => descendants(p).find((d) => isTrace(d.cmdline))?.pid,
      ),
    90_000,
  );
});
