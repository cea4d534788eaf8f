#!/usr/bin/env node
/* global process, console, setTimeout */
/**
 * bench/churn: connections per second of `twlab churn`, a C reference client and the seed's client
 * (Python 3), side by side in ONE sandbox and one run, at concurrency 1 and 64, against the same C
 * epoll server. Prints a table and the ratio twlab/C. Not a test: numbers depend on the machine.
 *
 *   npm run bench:churn [-- --count N --rounds R --json --baseline DIR]
 *
 * --baseline DIR adds a fourth client, `twlab-before`: the churn of another built checkout of twlab
 * (DIR/dist/cli/main.js, e.g. a `git worktree` of main), so a change to the engine is measured
 * against the code before it in the same run, rounds interleaved.
 *
 * The kernel is given room so it is not the limit: ports 1024-65535, tcp_tw_reuse=1 and
 * tcp_tw_reuse_delay=1 ms (with the defaults, every client stalls near 14k/s in the port search).
 * Needs a built dist/ (npm run build) and cc.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  benchArgs,
  benchSandbox,
  compileC,
  execRetryingRebuild,
  loadAverage,
  log,
  median,
  twlabArgv,
} from '../lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const args = benchArgs();
const COUNT = args.num('--count', 150_000);
const ROUNDS = args.num('--rounds', 3);
const JSON_OUT = args.json;
const BASELINE = args.str('--baseline');
const CONCURRENCIES = [1, 64];
const PORT = 80; // outside the ephemeral range, so the server never competes for a client port

const cClient = compileC('churn-client', join(here, 'client.c'));
const cServer = compileC('churn-server', join(here, 'server.c'));

const sandbox = await benchSandbox({ tcp_tw_reuse: 1, tcp_tw_reuse_delay: 1 });
const host = sandbox.client;

function parseLastJson(text, who) {
  try {
    return JSON.parse(text); // twlab --json: one (pretty-printed) document
  } catch {
    /* the C and Python clients print one JSON line last */
  }
  const line = text.trim().split('\n').filter(Boolean).pop();
  try {
    return JSON.parse(line ?? '');
  } catch {
    throw new Error(`${who} printed no JSON: ${text.slice(0, 300)}`);
  }
}

async function runOne(kind, concurrency) {
  const target = ['127.0.0.1', String(PORT)];
  let argv;
  if (kind === 'C') argv = [cClient, ...target, String(COUNT), String(concurrency)];
  else if (kind === 'python') {
    // The seed's client is ~5x slower: a smaller count keeps the round short.
    argv = [
      'python3',
      join(here, 'seed_client.py'),
      ...target,
      String(Math.ceil(COUNT / 5)),
      String(concurrency),
    ];
  } else {
    const churn = ['churn', '--to', `127.0.0.1:${PORT}`, '--count', String(COUNT)];
    argv = twlabArgv(...churn, '--concurrency', String(concurrency), '--json');
    if (kind === 'twlab-before') argv[1] = join(BASELINE, 'dist', 'cli', 'main.js');
  }
  // Every client runs the same way: its own process via host.exec (its own session, hence its
  // own scheduler autogroup; a client run inside the agent would share the agent's group).
  const opts = { timeoutMs: 300_000 };
  const twlab = kind.startsWith('twlab');
  const r = twlab ? await execRetryingRebuild(host, argv, opts) : await host.exec(argv, opts);
  if (r.code !== 0) throw new Error(`${kind} exited ${r.code}: ${r.stderr.slice(0, 300)}`);
  const out = parseLastJson(r.stdout, kind);
  if (out.failed > 0) log(`  warning: ${kind} c=${concurrency} had ${out.failed} failures`);
  const cpuMs = twlab ? out.cpu.ms : out.cpuMs;
  return { cps: out.connectionsPerSecond, cpuUs: (cpuMs * 1000) / out.succeeded };
}

const server = host.spawn([cServer, '127.0.0.1', String(PORT), '900']);
await new Promise((resolve, reject) => {
  server.stdout.on('data', (d) => String(d).includes('listening') && resolve());
  server.on('exit', (c) => reject(new Error(`server exited ${c}`)));
  setTimeout(() => reject(new Error('server did not listen within 10 s')), 10_000);
});

const kinds = ['C', 'twlab', 'python', ...(BASELINE ? ['twlab-before'] : [])];
/** `${kind}@${concurrency}` -> one { cps, cpuUs } per round. */
const results = {};
/** The load average before and after the rounds: the figures are only comparable with it. */
const load = { start: loadAverage(), end: '' };
try {
  log(
    `bench/churn: ${COUNT} connections per run (python: ${Math.ceil(COUNT / 5)}), ${ROUNDS} rounds, ` +
      `kernel ${sandbox.kernel}, load average ${load.start}`,
  );
  for (const c of CONCURRENCIES) {
    for (const k of kinds) results[`${k}@${c}`] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      // Rotate the order each round so no client always runs first (warm caches, TIME_WAIT load).
      const order = kinds.map((_, i) => kinds[(i + round) % kinds.length]);
      for (const k of order) {
        const r = await runOne(k, c);
        results[`${k}@${c}`].push(r);
        log(`  c=${c} round ${round} ${k}: ${r.cps} conn/s, ${r.cpuUs.toFixed(1)} us CPU per connection`);
      }
    }
  }
} finally {
  server.kill('SIGKILL');
  await sandbox.close();
  load.end = loadAverage();
  log(`load average at the end: ${load.end}`);
}

const r2 = (v) => Math.round(v * 100) / 100;
const rows = CONCURRENCIES.map((c) => {
  const m = (k, f) => median(results[`${k}@${c}`].map(f));
  const cps = (k) => m(k, (r) => r.cps);
  const cpu = (k) => r2(m(k, (r) => r.cpuUs));
  return {
    concurrency: c,
    connPerSec: { C: cps('C'), twlab: cps('twlab'), python: cps('python') },
    cpuUsPerConnection: { C: cpu('C'), twlab: cpu('twlab'), python: cpu('python') },
    // Wall-clock rate ratio (the target: >= 0.8), and the same from CPU cost (C's / twlab's).
    ratioTwlabToC: r2(cps('twlab') / cps('C')),
    ratioTwlabToCByCpu: r2(cpu('C') / cpu('twlab')),
    ratioPythonToC: r2(cps('python') / cps('C')),
    ratioPythonToCByCpu: r2(cpu('C') / cpu('python')),
    ...(BASELINE && {
      before: { connPerSec: cps('twlab-before'), cpuUsPerConnection: cpu('twlab-before') },
      ratioTwlabToBefore: r2(cps('twlab') / cps('twlab-before')),
      ratioTwlabToBeforeByCpu: r2(cpu('twlab-before') / cpu('twlab')),
    }),
  };
});
if (JSON_OUT) {
  process.stdout.write(
    `${JSON.stringify({ kernel: sandbox.kernel, count: COUNT, rounds: ROUNDS, load, rows, results }, null, 2)}\n`,
  );
} else {
  console.log(
    `\nmedians of ${ROUNDS} rounds of ${COUNT} (C epoll server, 1 sandbox, loopback, ports 1024-65535, tcp_tw_reuse=1, delay 1 ms; load ${load.start} -> ${load.end})`,
  );
  console.log(
    '                 connections/s              CPU us per connection      twlab/C        python/C',
  );
  console.log(
    'concurrency     C    twlab   python        C    twlab   python      rate   cpu      rate   cpu',
  );
  const n = (v, w) => String(v).padStart(w);
  for (const r of rows) {
    const { connPerSec: a, cpuUsPerConnection: u } = r;
    console.log(
      `${n(r.concurrency, 11)} ${n(a.C, 6)} ${n(a.twlab, 8)} ${n(a.python, 8)} ${n(u.C, 8)} ${n(u.twlab, 8)} ${n(u.python, 8)}` +
        `  ${n(r.ratioTwlabToC.toFixed(2), 8)} ${n(r.ratioTwlabToCByCpu.toFixed(2), 5)}  ${n(r.ratioPythonToC.toFixed(2), 8)} ${n(r.ratioPythonToCByCpu.toFixed(2), 5)}`,
    );
  }
  for (const r of BASELINE ? rows : []) {
    console.log(
      `twlab-before (${BASELINE}) at concurrency ${r.concurrency}: ${r.before.connPerSec} conn/s, ` +
        `${r.before.cpuUsPerConnection} us CPU per connection; twlab/before ${r.ratioTwlabToBefore.toFixed(2)} by rate, ` +
        `${r.ratioTwlabToBeforeByCpu.toFixed(2)} by CPU`,
    );
  }
}
