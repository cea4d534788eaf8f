/**
 * For tests that need real network namespaces (through src/sandbox). `describeNs` runs its
 * tests when a sandbox can be made here; when it cannot, it FAILS under CI (CI=true), and
 * elsewhere prints a loud warning and skips. Also: snapshots of a process tree and its
 * namespaces, to prove that nothing of a sandbox survives.
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { describe, it } from 'vitest';
import { createSandbox } from '../../src/sandbox/index.js';

async function probe(): Promise<{ available: boolean; reason: string }> {
  try {
    const box = await createSandbox({ hosts: 1 });
    await box.close();
    return { available: true, reason: '' };
  } catch (err) {
    return { available: false, reason: err instanceof Error ? err.message : String(err) };
  }
}

/** Whether this machine can make a sandbox, probed once per test file. */
export const namespaces = await probe();

const inCi = process.env['CI'] === 'true' || process.env['CI'] === '1';

/** describe() for tests that need namespaces; see the file comment for what happens without. */
export function describeNs(name: string, body: () => void): void {
  if (namespaces.available) {
    describe(name, body);
  } else if (inCi) {
    describe(name, () => {
      it('needs network namespaces (CI=true: this must not be skipped)', () => {
        throw new Error(`no sandbox on this machine: ${namespaces.reason}`);
      });
    });
  } else {
    process.stderr.write(
      `\n!!!!! SKIPPING "${name}": no network namespaces here (${namespaces.reason}). ` +
        'These tests run for real under CI=true. !!!!!\n\n',
    );
    describe.skip(name, body);
  }
}

/** it() for one test that needs namespaces; same policy as describeNs. */
export function itNs(
  name: string,
  body: () => Promise<void> | void,
  timeoutMs?: number,
  opts: { retry?: number } = {},
): void {
  if (namespaces.available) {
    it(name, { ...(timeoutMs !== undefined ? { timeout: timeoutMs } : {}), ...opts }, body);
  } else if (inCi) {
    it(name, () => {
      throw new Error(`no sandbox on this machine (CI=true: this must not be skipped): ${namespaces.reason}`);
    });
  } else {
    process.stderr.write(
      `\n!!!!! SKIPPING "${name}": no network namespaces here (${namespaces.reason}) !!!!!\n\n`,
    );
    it.skip(name, body);
  }
}

/** One process as seen now: pid, start time (tells a reused pid apart), namespaces. */
export interface ProcInfo {
  pid: number;
  start: string;
  netns: string;
  pidns: string;
  cmdline: string;
}

function info(pid: number): ProcInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return {
      pid,
      start: stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!,
      netns: readlinkSync(`/proc/${pid}/ns/net`),
      pidns: readlinkSync(`/proc/${pid}/ns/pid`),
      cmdline: readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim(),
    };
  } catch {
    return undefined;
  }
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      const text = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      if (text) out.push(...text.split(/\s+/).map(Number));
    } catch {
      // task gone
    }
  }
  return out;
}

/** Every descendant of pid (not pid itself), with its namespaces. */
export function descendants(pid: number): ProcInfo[] {
  const out: ProcInfo[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const p = queue.shift()!;
    let kids: number[];
    try {
      kids = childrenOf(p);
    } catch {
      continue;
    }
    for (const k of kids) {
      const i = info(k);
      if (i) out.push(i);
      queue.push(k);
    }
  }
  return out;
}

/** The processes of `before` still alive (same pid and start time). */
export function stillAlive(before: readonly ProcInfo[]): ProcInfo[] {
  return before.filter((p) => info(p.pid)?.start === p.start);
}

/** Every process on the machine that matches. */
export function processesWhere(pred: (p: ProcInfo) => boolean): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const i = info(Number(entry));
    if (i && pred(i)) out.push(i);
  }
  return out;
}

/** Every process on the machine in one of these network namespaces. */
export function processesInNetns(netns: ReadonlySet<string>): ProcInfo[] {
  return processesWhere((p) => netns.has(p.netns));
}

/** Now, in /proc/PID/stat's starttime unit (USER_HZ ticks since boot, 100 per second on Linux). */
export function ticksNow(): number {
  return Math.floor(Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 100);
}

/**
 * Processes in these network namespaces that started by `tick` (see ticksNow). The kernel gives
 * a dead namespace's inode number to the next namespace made, and other test files make
 * namespaces all the time: a process that started later is in a namespace made after ours died.
 */
export function processesInNetnsSince(netns: ReadonlySet<string>, tick: number): ProcInfo[] {
  return processesInNetns(netns).filter((p) => Number(p.start) <= tick);
}

/** A process as it is now (undefined if gone). */
export function procInfo(pid: number): ProcInfo | undefined {
  return info(pid);
}

/** twlab's own network namespace (the host's, for these tests). */
export const ownNetns = readlinkSync('/proc/self/ns/net');

/** Poll until fn() is true or the time is up; returns the last value of fn(). */
export async function waitFor(fn: () => boolean, timeoutMs: number, stepMs = 25): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (fn()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
