/**
 * The dashboard's host view at host scale: 60 network namespaces (sandbox light hosts), each with
 * TIME-WAIT sockets from bench/census's tw-maker (a C program: a Python fixture per namespace
 * costs seconds each on a loaded machine). One view reads them all, each count equal to `ss`
 * inside that namespace, and the cost is printed (the figures in docs/ARCHITECTURE.md). With a
 * budget too small for one view, each view reads the least recently read namespaces first and
 * shows the others as last read: every namespace is listed in every view and read within a few.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readlinkSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createLightHosts, type LightHosts } from '../../src/sandbox/light-hosts.js';
import { HostApi } from '../../src/ui/host-api.js';
import type { NetnsCensus } from '../../src/observe/census-all.js';
import { discoverNetns, type NetnsDiscovery } from '../../src/observe/namespaces.js';
import { describeNs } from '../helpers/sandbox.js';
import { parseSs } from '../helpers/containers.js';

const TW_MAKER = fileURLToPath(new URL('../../bench/census/tw-maker.c', import.meta.url));

const HOSTS = 60;
const TW = 30;

function run(argv: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(argv[0]!, argv.slice(1), { timeout: 30_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${argv.join(' ')}: ${stderr || err.message}`)) : resolve(stdout),
    ),
  );
}

describeNs(`ui host view with ${HOSTS} namespaces`, () => {
  let lh: LightHosts;
  const dir = mkdtempSync(join(tmpdir(), 'twlab-host-scale-'));
  const inodes: number[] = [];

  beforeAll(async () => {
    const maker = join(dir, 'tw-maker');
    execFileSync('cc', ['-O2', '-o', maker, TW_MAKER]);
    lh = await createLightHosts(HOSTS, { sysctls: { tcp_tw_reuse: 0 } });
    for (const h of lh.hosts) inodes.push(Number(/\d+/.exec(readlinkSync(`/proc/${h.pid}/ns/net`))![0]));
    // TIME-WAIT lasts 60 s: made last, so that the first test's view comes seconds after, even on a
    // loaded machine (ss was read here before, namespace by namespace, and on a loaded machine the
    // first namespace's sockets had expired by the time of the view).
    for (let i = 0; i < HOSTS; i += 10)
      await Promise.all(lh.hosts.slice(i, i + 10).map((h) => run(h.enter([maker, '7000', '1', String(TW)]))));
  }, 120_000);

  /** `ss -tan` in each of our namespaces, ten at a time. */
  async function ssAll(): Promise<Map<number, Record<string, number>>> {
    const ss = new Map<number, Record<string, number>>();
    for (let i = 0; i < HOSTS; i += 10)
      await Promise.all(
        lh.hosts
          .slice(i, i + 10)
          .map(async (h, j) => ss.set(inodes[i + j]!, parseSs(await run(h.enter(['ss', '-tan']))))),
      );
    return ss;
  }

  afterAll(async () => {
    await lh?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Discovery's answer cut to this test's namespaces (others come and go on a shared host). */
  const ours = (): NetnsDiscovery => {
    const all = discoverNetns();
    return { ...all, namespaces: all.namespaces.filter((n) => inodes.includes(n.inode)) };
  };

  it('reads every namespace in one view, counts equal to ss, and says how long it took', async () => {
    const found = ours();
    expect(found.namespaces).toHaveLength(HOSTS);
    // No budget to speak of: every namespace read, to hold each to ss and to time a full pass.
    const api = new HostApi({ budgetMs: 60_000, discover: () => found });
    const t0 = performance.now();
    const view = api.hostView();
    const wallMs = performance.now() - t0;
    // A second request within the TTL is the same view: no second read.
    expect(api.hostView()).toBe(view);
    // ss after the view: TIME-WAIT sockets only expire meanwhile (none is made), so the view's
    // count lies between ss's and the TW made; every other state is equal.
    const ss = await ssAll();
    for (const inode of inodes) {
      const n = view.namespaces.find((x) => x.netns.inode === inode);
      expect(n, String(inode)).toBeDefined();
      const { 'TIME-WAIT': viewTw = 0, ...viewRest } = n!.byState;
      const { 'TIME-WAIT': ssTw = 0, ...ssRest } = ss.get(inode)!;
      expect(viewRest, String(inode)).toEqual(ssRest);
      expect(viewTw, `${inode}: TIME-WAIT in the view, then ss ${ssTw}`).toBeGreaterThanOrEqual(ssTw);
      expect(viewTw, String(inode)).toBeLessThanOrEqual(TW);
      expect(n!.timeWait.count).toBeGreaterThanOrEqual(TW - 3);
      expect(n!.sysctls?.['net.ipv4.tcp_tw_reuse']).toBe('0');
    }
    expect(view.host.overBudget).toBe(0);
    expect(view.namespaces).toHaveLength(HOSTS);
    const perNs = view.timing.readMs / view.host.read;
    process.stderr.write(
      `host view: ${view.host.seen} namespaces (${HOSTS} with ${TW} TIME-WAIT), discovery ` +
        `${view.timing.discoverMs} ms, reads ${view.timing.readMs} ms (${perNs.toFixed(1)} ms each), ` +
        `wall ${wallMs.toFixed(0)} ms, ${JSON.stringify(view).length} bytes of JSON, load ${loadavg()[0]!.toFixed(1)}\n`,
    );
    // What the dashboard's own budget reads in one view of the whole host now.
    const whole = new HostApi().hostView();
    process.stderr.write(
      `whole host, default budget: ${whole.host.seen} namespaces, ${whole.host.read} read in ` +
        `${whole.timing.readMs} ms, ${whole.host.overBudget} left to later views, discovery ` +
        `${whole.timing.discoverMs} ms, ${JSON.stringify(whole).length} bytes of JSON\n`,
    );
  }, 60_000);

  it('over budget: every namespace listed in each view, each read within a few views, stalest first', () => {
    let clock = Date.now();
    // This test's namespaces only (others come and go on a shared host), discovered once; a zero
    // budget: each view reads exactly one namespace.
    const found = ours();
    expect(found.namespaces).toHaveLength(HOSTS);
    const api = new HostApi({ budgetMs: 0, now: () => (clock += 3_000), discover: () => found });
    const reads = new Map<number, number>();
    const allRead = (): boolean => inodes.every((i) => reads.has(i));
    for (let v = 0; v < HOSTS && !allRead(); v++) {
      const view = api.hostView();
      expect(view.host.read + view.host.skipped.length, `view ${v}`).toBe(1);
      for (const n of view.namespaces)
        if (n.readAt === view.timing.at) reads.set(n.netns.inode, (reads.get(n.netns.inode) ?? 0) + 1);
      // Every namespace read so far is still listed, fresh or as last read.
      expect(view.namespaces).toHaveLength(reads.size);
    }
    expect(allRead()).toBe(true);
    // Stalest first: none was read twice before every one was read once.
    for (const i of inodes) expect(reads.get(i), String(i)).toBe(1);
  }, 60_000);

  it('?netns= of a namespace whose cached paths are stale reads it through a fresh discovery', async () => {
    // The kernel gives a dead namespace's inode number to the next one made: a cached discovery
    // may then send the read to the old namespace's exited processes, which looks like "gone".
    const found = ours();
    const target = found.namespaces[0]!;
    const dead = '/proc/4194304/ns/net'; // pids are below PID_MAX_LIMIT
    const stale = { ...found, namespaces: [{ ...target, path: dead, paths: [dead] }] };
    let calls = 0;
    const api = new HostApi({ discover: () => (calls++ === 0 ? stale : found) });
    const census = await api.census(String(target.inode));
    expect((census.census as NetnsCensus).netns.inode).toBe(target.inode);
    expect(calls).toBe(2);
  });
});
