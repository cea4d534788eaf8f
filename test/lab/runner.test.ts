/**
 * The runner's bookkeeping: scheduling, budgets, and that every sandbox a claim opened is closed
 * whatever the claim did. Sandboxes here are stand-ins that only count open/close (the runner
 * never touches the kernel itself; the real experiments are tested in s0-experiments.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Sandbox, SandboxSpec } from '../../src/sandbox/types.js';
import { describeSysctls, runClaims, runLab, runTasks, type SandboxFactory } from '../../src/lab/runner.js';
import type { Claim } from '../../src/lab/types.js';

function factory(): { create: SandboxFactory; opened: number; closed: number; live: () => number } {
  const state = { opened: 0, closed: 0 };
  const create: SandboxFactory = async (spec: SandboxSpec) => {
    state.opened++;
    let closed = false;
    const sysctls = Object.entries(spec.sysctls ?? {}).map(([k, v]) => ({
      key: k,
      requested: String(v),
      value: String(v),
      status: k.includes('recycle') ? ('not-present' as const) : ('applied' as const),
      hosts: ['client' as const],
    }));
    return {
      sysctls,
      close: async () => {
        if (!closed) state.closed++;
        closed = true;
      },
    } as unknown as Sandbox;
  };
  return {
    create,
    get opened() {
      return state.opened;
    },
    get closed() {
      return state.closed;
    },
    live: () => state.opened - state.closed,
  };
}

function claim(id: string, run: Claim['run'], extra: Partial<Claim> = {}): Claim {
  return {
    id,
    claim: `claim ${id}`,
    source: { seed: 'seed.txt', where: 'here', quote: 'q' },
    estimateMs: 100,
    run,
    judge: (m) => ({ verdict: (m as { ok?: boolean }).ok ? 'confirmed' : 'refuted', explanation: 'because' }),
    ...extra,
  };
}

describe('runner', () => {
  it('runs at most `jobs` tasks at once, longest estimate first, results in input order', async () => {
    let running = 0;
    let peak = 0;
    const started: string[] = [];
    const tasks = [50, 300, 100, 200].map((ms, i) => ({
      id: `t${i}`,
      estimateMs: ms,
      run: async () => {
        started.push(`t${i}`);
        running++;
        peak = Math.max(peak, running);
        await sleep(ms);
        running--;
        return { ms };
      },
    }));
    const f = factory();
    const t0 = Date.now();
    const out = await runTasks(tasks, { createSandbox: f.create, kernel: 'k', jobs: 2 });
    expect(peak).toBe(2);
    expect(started.slice(0, 2)).toEqual(['t1', 't3']);
    expect(out.map((o) => (o.ok ? (o.value as { ms: number }).ms : -1))).toEqual([50, 300, 100, 200]);
    // 2 lanes: 300 | 200+100+50 -> about 350 ms, well under the 650 ms of one lane.
    expect(Date.now() - t0).toBeLessThan(600);
  });

  it('waiting tasks overlap: 6 tasks of 200 ms with 6 jobs take about 200 ms', async () => {
    const f = factory();
    const tasks = Array.from({ length: 6 }, (_, i) => ({
      id: `w${i}`,
      estimateMs: 200,
      run: () => sleep(200, {}),
    }));
    const t0 = Date.now();
    await runTasks(tasks, { createSandbox: f.create, kernel: 'k', jobs: 6 });
    expect(Date.now() - t0).toBeLessThan(500);
  });

  it('sandbox creations are spread: at most `sandboxStarts` at once across all tasks', async () => {
    let creating = 0;
    let peak = 0;
    const slow: SandboxFactory = async () => {
      creating++;
      peak = Math.max(peak, creating);
      await sleep(30);
      creating--;
      return { sysctls: [], close: async () => undefined } as unknown as Sandbox;
    };
    const tasks = Array.from({ length: 4 }, (_, i) => ({
      id: `s${i}`,
      estimateMs: 10,
      run: async (ctx: Parameters<Claim['run']>[0]) => {
        await Promise.all([ctx.sandbox({}), ctx.sandbox({}), ctx.sandbox({})]);
        return {};
      },
    }));
    const out = await runTasks(tasks, { createSandbox: slow, kernel: 'k', jobs: 4, sandboxStarts: 2 });
    expect(out.every((o) => o.ok)).toBe(true);
    expect(peak).toBe(2);
  });

  it('a claim that throws is not-tested with the reason, and its sandboxes are closed', async () => {
    const f = factory();
    const c = claim('X-01', async (ctx) => {
      await ctx.sandbox({ hosts: 2 });
      await ctx.sandbox({ hosts: 1 });
      throw new Error('veth pair refused');
    });
    const [r] = await runClaims([c], { createSandbox: f.create, kernel: '6.1.0' });
    expect(r!.verdict).toBe('not-tested');
    expect(r!.error).toBe('veth pair refused');
    expect(r!.explanation).toContain('veth pair refused');
    expect(f.opened).toBe(2);
    expect(f.live()).toBe(0);
  });

  it('a claim over its budget is not-tested, its signal aborts, its sandboxes close', async () => {
    const f = factory();
    let aborted = false;
    const c = claim(
      'X-02',
      async (ctx) => {
        await ctx.sandbox({});
        ctx.signal.addEventListener('abort', () => (aborted = true));
        await sleep(5_000);
        return { ok: true };
      },
      { budgetMs: 150 },
    );
    const t0 = Date.now();
    const [r] = await runClaims([c], { createSandbox: f.create, kernel: 'k' });
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(r!.verdict).toBe('not-tested');
    expect(r!.error).toMatch(/time budget/);
    expect(aborted).toBe(true);
    expect(f.live()).toBe(0);
  });

  it('a verdict rule that throws is not-tested, with the measurement kept as evidence', async () => {
    const f = factory();
    const c = claim('X-03', async () => ({ n: 1 }), {
      judge: () => {
        throw new Error('no rule for n=1');
      },
    });
    const [r] = await runClaims([c], { createSandbox: f.create, kernel: 'k' });
    expect(r!.verdict).toBe('not-tested');
    expect(r!.error).toContain('no rule for n=1');
    expect(r!.evidence['n']).toBe(1);
  });

  it('evidence carries the kernel and every sysctl the experiment set, with their outcome', async () => {
    const f = factory();
    const c = claim('X-04', async (ctx) => {
      await ctx.sandbox({ sysctls: { 'net.ipv4.tcp_tw_reuse': 1 } });
      await ctx.sandbox({ sysctls: { 'net.ipv4.tcp_tw_recycle': 1 } });
      return { ok: true };
    });
    const [r] = await runClaims([c], { createSandbox: f.create, kernel: '6.18.0' });
    expect(r!.verdict).toBe('confirmed');
    expect(r!.evidence['kernel']).toBe('6.18.0');
    expect(r!.evidence['sysctlsSet']).toEqual([
      'net.ipv4.tcp_tw_reuse=1',
      'net.ipv4.tcp_tw_recycle=1 (not-present)',
    ]);
  });

  it('an outer abort ends running claims as not-tested and closes their sandboxes', async () => {
    const f = factory();
    const controller = new AbortController();
    const c = claim('X-05', async (ctx) => {
      await ctx.sandbox({});
      await sleep(5_000);
      return { ok: true };
    });
    setTimeout(() => controller.abort(new Error('interrupted by the user')), 100);
    const [r] = await runClaims([c], { createSandbox: f.create, kernel: 'k', signal: controller.signal });
    expect(r!.verdict).toBe('not-tested');
    expect(r!.error).toContain('interrupted');
    expect(f.live()).toBe(0);
  });

  it('runLab: a crashed fix is reported with its reason, not dropped', async () => {
    const f = factory();
    const report = await runLab({
      createSandbox: f.create,
      kernel: 'k',
      claims: [claim('X-06', async () => ({ ok: true }))],
      fixes: [
        {
          id: 'f',
          name: 'a fix',
          source: 's',
          estimateMs: 10,
          run: async () => {
            throw new Error('server did not start');
          },
        },
      ],
    });
    expect(report.claims.map((c) => c.verdict)).toEqual(['confirmed']);
    expect(report.fixes[0]!.error).toBe('server did not start');
    expect(report.fixes[0]!.note).toContain('server did not start');
  });

  it('describeSysctls keeps each setting once, with its status when not applied', () => {
    expect(
      describeSysctls([
        { key: 'a', requested: '1', value: '1', status: 'applied', hosts: ['client'] },
        { key: 'a', requested: '1', value: '1', status: 'applied', hosts: ['client'] },
        { key: 'b', requested: '9', status: 'rejected', reason: 'EINVAL', hosts: ['client'] },
      ]),
    ).toEqual(['a=1', 'b=9 (rejected: EINVAL)']);
  });
});
