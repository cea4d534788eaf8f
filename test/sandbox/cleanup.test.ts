/**
 * Nothing of a sandbox survives its parent: after SIGKILL (the kernel's work: parent-death
 * signal and pid namespace), SIGINT/SIGTERM (twlab's exit path, common/exit.ts), an exception inside withSandbox,
 * and an uncaught exception with the sandbox left open. Each test records the agents' pids and
 * network namespaces while they run, then looks through /proc for any survivor.
 */
import { spawn } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { expect, it } from 'vitest';
import { withSandbox } from '../../src/sandbox/index.js';
import { CLI } from '../helpers/cli.js';
import type { ProcInfo } from '../helpers/sandbox.js';
import {
  describeNs,
  descendants,
  ownNetns,
  procInfo,
  processesInNetnsSince,
  stillAlive,
  ticksNow,
  waitFor,
} from '../helpers/sandbox.js';

/** Runs a command as nobody (uid 65534): the unprivileged user-namespace path. */
const AS_NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--'];

const SANDBOX_DIST = new URL('../../dist/sandbox/index.js', import.meta.url).href;

function start(
  argv: string[],
  prefix: string[] = [],
): {
  child: ChildProcess;
  output: () => string;
  exit: Promise<[number | null, string | null]>;
} {
  const full = [...prefix, process.execPath, ...argv];
  const child = spawn(full[0]!, full.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exit = new Promise<[number | null, string | null]>((resolve) =>
    child.on('exit', (code, signal) => resolve([code, signal])),
  );
  return { child, output: () => out, exit };
}

/** The agent itself (node running agent.js), not the unshare that started it. */
const isAgent = (p: ProcInfo): boolean =>
  p.cmdline.startsWith(`${process.execPath} `) && p.cmdline.includes('sandbox/agent.js');

/** The sandbox's processes and namespaces under a parent, once its CMD runs. */
/** What a run had when it was taken (`at`, in ticks: see processesInNetnsSince). */
interface Snapshot {
  procs: ProcInfo[];
  netns: Set<string>;
  at: number;
}

function snapshot(parentPid: number, agents: number): Snapshot {
  const at = ticksNow();
  const procs = descendants(parentPid);
  const agentProcs = procs.filter(isAgent);
  expect(agentProcs).toHaveLength(agents);
  const netns = new Set(agentProcs.map((p) => p.netns));
  expect(netns.size).toBe(agents);
  expect(netns.has(ownNetns)).toBe(false);
  return { procs, netns, at };
}

async function expectNothingLeft(snap: Snapshot): Promise<void> {
  const inItsNetns = (): ProcInfo[] => processesInNetnsSince(snap.netns, snap.at);
  const gone = await waitFor(() => stillAlive(snap.procs).length === 0 && inItsNetns().length === 0, 10_000);
  if (!gone) {
    const left = [...stillAlive(snap.procs), ...inItsNetns()];
    throw new Error(`survivors: ${left.map((p) => `${p.pid} ${p.netns} ${p.cmdline}`).join('; ')}`);
  }
}

describeNs('nothing of a `twlab sandbox` survives its parent', () => {
  for (const [signal, expected] of [
    ['SIGKILL', [null, 'SIGKILL']],
    ['SIGINT', [130, null]],
    ['SIGTERM', [143, null]],
  ] as const) {
    it(`after ${signal} of the parent (2 hosts, CMD with a child of its own)`, async () => {
      const run = start([CLI, 'sandbox', '--hosts', '2', '--', 'sh', '-c', 'sleep 100 & echo ready; wait']);
      try {
        expect(await waitFor(() => run.output().includes('ready'), 30_000)).toBe(true);
        // `sleep` may not have exec'd yet when sh says ready.
        const hasSleep = (): boolean => descendants(run.child.pid!).some((p) => p.cmdline === 'sleep 100');
        expect(await waitFor(hasSleep, 10_000)).toBe(true);
        const snap = snapshot(run.child.pid!, 2);
        // CMD and its child run in the client's namespaces.
        const sleeps = snap.procs.filter((p) => p.cmdline === 'sleep 100');
        expect(sleeps).toHaveLength(1);
        expect(snap.netns.has(sleeps[0]!.netns)).toBe(true);
        run.child.kill(signal);
        const [code, sig] = await run.exit;
        // SIGINT/SIGTERM: passed on to CMD, which dies of it; twlab exits 128+n.
        expect([code, sig]).toEqual(expected);
        await expectNothingLeft(snap);
      } finally {
        run.child.kill('SIGKILL');
      }
    });
  }

  it('after SIGTERM during startup (no CMD yet: the exit path kills the agents, exit 143)', async () => {
    const run = start([CLI, 'sandbox', '--hosts', '2', '--', 'sleep', '100']);
    try {
      // Catch it while the agents exist but CMD does not.
      expect(
        await waitFor(
          () => descendants(run.child.pid!).some((p) => p.cmdline.includes('sandbox/agent.js')),
          30_000,
          5,
        ),
      ).toBe(true);
      const at = ticksNow();
      const procs = descendants(run.child.pid!);
      const netns = new Set(procs.filter((p) => p.netns !== ownNetns).map((p) => p.netns));
      run.child.kill('SIGTERM');
      const [code, sig] = await run.exit;
      expect([code, sig]).toEqual([143, null]);
      expect(run.output()).toMatch(/^twlab: interrupted$/m);
      await expectNothingLeft({ procs, netns, at });
    } finally {
      run.child.kill('SIGKILL');
    }
  });
});

describeNs('the kernel, not the agent, guarantees the cleanup', () => {
  const who =
    process.getuid?.() === 0
      ? ([
          ['root', []],
          ['uid 65534 (userns)', 'nobody'],
        ] as const)
      : ([['this user', []]] as const);
  for (const [label, as] of who) {
    it(`SIGKILL of the parent kills agents that cannot react (stopped), ${label}`, async () => {
      const run = start(
        [CLI, 'sandbox', '--hosts', '2', '--', 'sh', '-c', 'sleep 100 & echo ready; wait'],
        as === 'nobody' ? AS_NOBODY : [],
      );
      let agents: ProcInfo[] = [];
      try {
        expect(await waitFor(() => run.output().includes('ready'), 30_000)).toBe(true);
        const snap = snapshot(run.child.pid!, 2);
        agents = snap.procs.filter(isAgent);
        // Stopped, an agent cannot see its channel close: only the parent-death signal chain and
        // the pid namespace can end the host now (SIGKILL works on stopped processes).
        for (const a of agents) process.kill(a.pid, 'SIGSTOP');
        run.child.kill('SIGKILL');
        await run.exit;
        await expectNothingLeft(snap);
      } finally {
        for (const a of stillAlive(agents)) process.kill(a.pid, 'SIGCONT');
        run.child.kill('SIGKILL');
      }
    });
  }
});

describeNs('nothing of an unprivileged `twlab sandbox` survives SIGKILL of its parent', () => {
  it.runIf(process.getuid?.() === 0)('as uid 65534 (user namespace, 2 hosts)', async () => {
    const run = start(
      [CLI, 'sandbox', '--hosts', '2', '--', 'sh', '-c', 'sleep 100 & echo ready; wait'],
      AS_NOBODY,
    );
    try {
      expect(await waitFor(() => run.output().includes('ready'), 30_000)).toBe(true);
      const snap = snapshot(run.child.pid!, 2);
      const userns = new Set(snap.procs.filter(isAgent).map((p) => readlinkSync(`/proc/${p.pid}/ns/user`)));
      expect(userns.size).toBe(1); // both hosts in one user namespace (the veth needs it)
      expect(userns.has(readlinkSync('/proc/self/ns/user'))).toBe(false);
      run.child.kill('SIGKILL');
      expect(await run.exit).toEqual([null, 'SIGKILL']);
      await expectNothingLeft(snap);
    } finally {
      run.child.kill('SIGKILL');
    }
  });
});

describeNs('nothing of a library sandbox survives', () => {
  it('an exception inside withSandbox', async () => {
    let snap: Snapshot | undefined;
    const err = await withSandbox({ hosts: 2 }, async (box) => {
      box.client.spawn(['sleep', '100']);
      box.server.spawn(['sh', '-c', 'sleep 100']);
      // Both sleeps started (a loaded machine may take a while to exec them).
      const sleeps = (): ProcInfo[] =>
        descendants(process.pid).filter((p) => p.cmdline.includes('sleep 100'));
      await waitFor(() => sleeps().length >= 2, 10_000);
      const at = ticksNow();
      const procs = [box.client.pid, box.server.pid].map((p) => procInfo(p)!);
      snap = {
        at,
        procs: [...procs, ...sleeps()],
        netns: new Set(procs.map((p) => p.netns)),
      };
      expect(snap.procs.length).toBeGreaterThanOrEqual(4);
      throw new Error('boom');
    }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('boom');
    await expectNothingLeft(snap!);
  });

  it('an uncaught exception in a program that never closes its sandbox', async () => {
    const script = `
      const { createSandbox } = await import(${JSON.stringify(SANDBOX_DIST)});
      const box = await createSandbox({ hosts: 2 });
      box.server.spawn(['sleep', '100']);
      console.log('ready ' + box.client.pid + ' ' + box.server.pid);
      setTimeout(() => { throw new Error('uncaught boom'); }, 500);
      setInterval(() => {}, 1000);
    `;
    const run = start(['--input-type=module', '-e', script]);
    try {
      expect(await waitFor(() => run.output().includes('ready'), 30_000)).toBe(true);
      const snap = snapshot(run.child.pid!, 2);
      const [code] = await run.exit;
      expect(code).toBe(1);
      expect(run.output()).toContain('uncaught boom');
      await expectNothingLeft(snap);
    } finally {
      run.child.kill('SIGKILL');
    }
  });

  it('a program that forgets close() still exits (a sandbox does not hold the event loop)', async () => {
    const script = `
      const { createSandbox } = await import(${JSON.stringify(SANDBOX_DIST)});
      const box = await createSandbox({ hosts: 1 });
      console.log('ready ' + box.client.pid);
    `;
    const run = start(['--input-type=module', '-e', script]);
    try {
      const [code] = await Promise.race([
        run.exit,
        new Promise<[number]>((r) => setTimeout(() => r([-1]), 30_000)),
      ]);
      expect(code).toBe(0);
      const pid = Number(/ready (\d+)/.exec(run.output())![1]);
      expect(await waitFor(() => procInfo(pid) === undefined, 10_000)).toBe(true);
    } finally {
      run.child.kill('SIGKILL');
    }
  });
});
