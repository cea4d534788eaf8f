#!/usr/bin/env node
/**
 * bench/census-all: `twlab census -A --json` on a host of many network namespaces, side by side in
 * one run with what an operator scripts today: one `nsenter --net=... ss -tan | wc -l` per
 * namespace (lsns lists them). Two hosts, one after the other:
 *   many:   NS namespaces with TW TIME_WAIT sockets each (default 200 x 500);
 *   single: one namespace with BIG TIME_WAIT sockets (default 100,000), where `census -A` (every
 *           namespace, from outside) and `census --netns PID` are held to today's `census --json`
 *           run inside that namespace.
 * Wall time from fork to exit (Node start-up included), CPU, and twlab's peak RSS, rounds
 * interleaved. Namespaces are sandbox "light hosts" (a sleep each, lo up, tcp_tw_reuse=0); the
 * sockets come from bench/census/tw-maker.c. TIME_WAIT lasts 60 s, so each host's rounds must
 * end within it: every tool's count is checked against what was made. Not a test.
 *
 *   npm run bench:census-all [-- --namespaces NS --tw TW --big BIG --rounds R --json]
 */
/* global process, console */
import {
  benchArgs,
  loadAverage,
  log,
  makeTimeWaitIn,
  median,
  runArgv as run,
  timeitArgv,
  twlabArgv,
} from '../lib.mjs';
import { createLightHosts } from '../../dist/sandbox/light-hosts.js';

const args = benchArgs();
const NS = args.num('--namespaces', 200);
const TW = args.num('--tw', 500);
const BIG = args.num('--big', 100_000);
const ROUNDS = args.num('--rounds', 5);

function row(res, name, ref) {
  const r = res[name];
  return {
    name,
    medianMs: median(r.ms),
    minMs: Math.min(...r.ms),
    ratioToRef: Math.round((median(r.ms) / median(res[ref].ms)) * 100) / 100,
    medianCpuMs: median(r.cpuMs),
    peakRssMB: Math.round(Math.max(...r.maxRssKB) / 102.4) / 10,
  };
}

/** The time-wait count of each namespace in a `census -A --json` document. */
function twByInode(doc) {
  return new Map(doc.namespaces.map((n) => [n.netns.inode, n.timeWait.count]));
}

async function many() {
  log(`bench/census-all: ${NS} namespaces...`);
  const lh = await createLightHosts(NS, { sysctls: { tcp_tw_reuse: 0 } });
  try {
    const made = await makeTimeWaitIn(lh.hosts, TW, 1, 8);
    const madeAt = Date.now();
    log(`  ${NS} x ${TW} TIME_WAIT made in ${made} s`);
    const loop =
      'for p in $(lsns -n -t net -o PID); do nsenter --net=/proc/$p/ns/net ss -tan state time-wait | wc -l; done';
    // Counts first (timeit keeps 200 bytes of output): TIME_WAIT lasts 60 s, and under load the
    // rounds take longer than that, so what each tool sees is checked while all sockets exist.
    const doc = JSON.parse(await run(twlabArgv('census', '-A', '--json')));
    const tw = twByInode(doc);
    const seen = lh.hosts.map((h) => {
      const inode = doc.namespaces.find((n) => n.processes.some((p) => p.pid === h.pid))?.netns.inode;
      return tw.get(inode) ?? -1;
    });
    const full = seen.filter((n) => n === TW).length;
    const loopLines = (await run(['sh', '-c', loop])).trim().split('\n').map(Number);
    const checkedAfter = (Date.now() - madeAt) / 1000;
    const cmds = {
      'twlab census -A --json': twlabArgv('census', '-A', '--json'),
      'nsenter+ss loop': ['sh', '-c', loop],
    };
    const res = JSON.parse(await run(timeitArgv(ROUNDS, cmds), 600_000));
    const roundsEndedAfter = (Date.now() - madeAt) / 1000;
    return {
      namespaces: NS,
      timeWaitEach: TW,
      rows: [
        row(res, 'twlab census -A --json', 'nsenter+ss loop'),
        row(res, 'nsenter+ss loop', 'nsenter+ss loop'),
      ],
      check: {
        twlabNamespacesWithAllTimeWait: full,
        loopNamespacesWithAllTimeWait: loopLines.filter((n) => n - 1 === TW).length,
        checkedAfterSec: checkedAfter,
        // Past 60 s the first TIME_WAIT sockets expire: rounds that end later timed a shrinking table.
        roundsEndedAfterSec: roundsEndedAfter,
      },
      load: loadAverage(),
    };
  } finally {
    await lh.close();
  }
}

async function single() {
  log(`bench/census-all: 1 namespace with ${BIG} TIME_WAIT...`);
  const lh = await createLightHosts(1, {
    portRange: { low: 1024, high: 65535 },
    sysctls: { tcp_tw_reuse: 0, tcp_max_tw_buckets: Math.max(262144, 2 * BIG) },
  });
  try {
    const h = lh.hosts[0];
    const made = await makeTimeWaitIn([h], BIG, 4, 1);
    log(`  ${BIG} TIME_WAIT made in ${made} s`);
    const cmds = {
      'census --json (inside)': h.enter(twlabArgv('census', '--json')),
      'census --netns PID --json': twlabArgv('census', '--netns', String(h.pid), '--json'),
      'census -A --json': twlabArgv('census', '-A', '--json'),
    };
    const res = JSON.parse(await run(timeitArgv(ROUNDS * 2 + 1, cmds)));
    // Each tool's own count, from a full output (timeit keeps 200 bytes).
    const seen = {};
    for (const [k, argv] of Object.entries(cmds)) {
      const doc = JSON.parse(await run(argv));
      const one = doc.namespaces ? doc.namespaces.find((n) => n.processes.some((p) => p.pid === h.pid)) : doc;
      seen[k] = one?.timeWait.count;
    }
    const ref = 'census --json (inside)';
    return {
      timeWait: BIG,
      rows: Object.keys(cmds).map((k) => row(res, k, ref)),
      check: seen,
      load: loadAverage(),
    };
  } finally {
    await lh.close();
  }
}

const summary = { many: await many(), single: await single(), cpus: (await run(['nproc'])).trim() };
const m = summary.many.rows[0];
summary.met = {
  tenTimesFaster: m.ratioToRef <= 0.1,
  singleNoSlower: summary.single.rows[1].ratioToRef <= 1.05,
  memoryUnder150MB:
    Math.max(...summary.many.rows.map((r) => r.peakRssMB), summary.single.rows[2].peakRssMB) < 150,
};
if (args.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
else {
  const print = (title, rows) => {
    console.log(title);
    console.log('tool                          median    min  ratio  cpu ms  peak RSS');
    for (const r of rows)
      console.log(
        `${r.name.padEnd(28)} ${String(r.medianMs).padStart(7)} ${String(r.minMs).padStart(6)} ${String(r.ratioToRef).padStart(6)} ${String(r.medianCpuMs).padStart(7)} ${`${r.peakRssMB} MB`.padStart(9)}`,
      );
  };
  print(
    `${NS} namespaces x ${TW} TIME_WAIT (load ${summary.many.load}); all ${TW} seen in ${summary.many.check.twlabNamespacesWithAllTimeWait} (twlab) / ${summary.many.check.loopNamespacesWithAllTimeWait} (loop) namespaces ${summary.many.check.checkedAfterSec} s after making them; rounds ended after ${summary.many.check.roundsEndedAfterSec} s`,
    summary.many.rows,
  );
  print(
    `1 namespace x ${BIG} TIME_WAIT (load ${summary.single.load}); seen: ${JSON.stringify(summary.single.check)}`,
    summary.single.rows,
  );
  console.log(`targets: ${JSON.stringify(summary.met)}`);
}
