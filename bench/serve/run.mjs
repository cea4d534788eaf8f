#!/usr/bin/env node
/* global process, console, setTimeout, setInterval, clearInterval */
/**
 * bench/serve: how many connections per second `twlab serve` handles, side by side with a C
 * epoll server (bench/churn/server.c), in ONE sandbox and one run, driven by the same client
 * (`twlab churn`, whose engine is raw syscalls + epoll) at concurrency 1 and 64, for both engines
 * of `twlab serve` (`--engine raw`: epoll loop in a worker thread; `--engine node`: Node's net server).
 *
 * Two close modes: server-first (the client waits for the server's FIN, so every iteration needs
 * the server to accept, read and close: the client's rate IS the server's rate) and client-first
 * (the seed's pattern: the client does not wait; a slow server shows up as accept-queue overflow
 * and SYN retransmits, and in the server's own count at the end). Prints medians and twlab/C.
 * Not a test: numbers depend on the machine and its load.
 *
 *   node bench/serve/run.mjs [--count N] [--rounds R] [--json]
 *
 * Needs a built dist/ (npm run build) and cc.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  benchArgs,
  benchSandbox,
  compileC,
  execRetryingRebuild,
  loadAverage as load,
  log,
  median,
  twlabArgv,
} from '../lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const args = benchArgs();
const COUNT = args.num('--count', 60_000);
const ROUNDS = args.num('--rounds', 3);
const JSON_OUT = args.json;
const CONCURRENCIES = [1, 64];
/** C: the reference epoll server; raw / node: `twlab serve --engine raw|node`. */
const KINDS = ['C', 'raw', 'node'];
const MODES = ['server-first', 'client-first'];
const PORT = 80; // outside the ephemeral range
const CLK_TCK = 100; // USER_HZ: /proc/<pid>/stat times are in 1/100 s on Linux

const cServer = compileC('serve-ref-server', join(here, '..', 'churn', 'server.c'));

const sandbox = await benchSandbox({ tcp_tw_reuse: 1, tcp_tw_reuse_delay: 1 });
const host = sandbox.client;

/** Every descendant pid of `pid` (nsenter -> setpriv -> the server), from /proc's children lists. */
function descendants(pid) {
  const out = [];
  const walk = (p) => {
    for (const task of readdirSync(`/proc/${p}/task`)) {
      let kids;
      try {
        kids = readFileSync(`/proc/${p}/task/${task}/children`, 'utf8');
      } catch {
        continue;
      }
      for (const k of kids.split(' ').filter(Boolean)) {
        out.push(Number(k));
        walk(Number(k));
      }
    }
  };
  walk(pid);
  return out;
}

/** CPU seconds (user + system, all threads) used so far by these processes. */
function cpuSeconds(pids) {
  let ticks = 0;
  for (const p of pids) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15)
    } catch {
      // gone
    }
  }
  return ticks / CLK_TCK;
}

/** Start a server; resolve when it listens. `stop()` ends it and resolves with what it reports. */
async function startServer(kind, mode) {
  const argv =
    kind === 'C'
      ? [cServer, '127.0.0.1', String(PORT), '600', mode]
      : twlabArgv(
          'serve',
          '--listen',
          `127.0.0.1:${PORT}`,
          '--engine',
          kind,
          '--close',
          mode,
          '--duration',
          '600',
          '--json',
        );
  const child = host.spawn(argv);
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d) => (err += d));
  const exited = new Promise((resolve) => child.on('close', resolve));
  await new Promise((resolve, reject) => {
    const t = setInterval(() => {
      if (out.includes('listening')) {
        clearInterval(t);
        resolve();
      }
    }, 20);
    exited.then(() => reject(new Error(`${kind} server exited: ${err.slice(0, 300)}`)));
    setTimeout(() => reject(new Error(`${kind} server did not listen within 10 s`)), 10_000);
  });
  const pids = descendants(child.pid);
  const cpuAtStart = cpuSeconds(pids);
  return {
    /** CPU seconds the server has used since it listened. */
    cpu: () => cpuSeconds(pids) - cpuAtStart,
    async stop() {
      child.kill(kind === 'C' ? 'SIGKILL' : 'SIGTERM');
      await exited;
      if (kind === 'C') return null;
      const last = out.trim().split('\n').pop();
      return JSON.parse(last);
    },
  };
}

async function churn(mode, concurrency) {
  const argv = twlabArgv(
    'churn',
    '--to',
    `127.0.0.1:${PORT}`,
    '--count',
    String(COUNT),
    '--concurrency',
    String(concurrency),
    '--close',
    mode,
    '--json',
  );
  const r = await execRetryingRebuild(host, argv, { timeoutMs: 180_000 });
  if (r.code !== 0) throw new Error(`churn exited ${r.code}: ${r.stderr.slice(0, 300)}`);
  return JSON.parse(r.stdout);
}

const results = {};
/** Server CPU microseconds per connection, per run: independent of how busy the machine is. */
const cpuPerConn = {};
try {
  log(
    `bench/serve: ${COUNT} connections per run, ${ROUNDS} rounds, kernel ${sandbox.kernel}, load ${load()}`,
  );
  for (const mode of MODES) {
    for (const c of CONCURRENCIES) {
      for (let round = 1; round <= ROUNDS; round++) {
        // Rotate the order each round so no server always runs first.
        const order = KINDS.map((_, i) => KINDS[(i + round) % KINDS.length]);
        for (const kind of order) {
          const key = `${kind}|${mode}|${c}`;
          results[key] ??= [];
          const server = await startServer(kind, mode);
          const sum = await churn(mode, c);
          // client-first: give the server a moment to drain its accept queue before counting.
          await new Promise((r) => setTimeout(r, 300));
          const cpu = server.cpu();
          const served = await server.stop();
          results[key].push(sum.connectionsPerSecond);
          (cpuPerConn[key] ??= []).push((cpu / COUNT) * 1e6);
          const note =
            served === null
              ? ''
              : `; server: accepted ${served.accepted}, closed ${served.closed}, errors ${JSON.stringify(served.errors)}`;
          log(
            `  ${mode} c=${c} round ${round} ${kind}: ${sum.connectionsPerSecond} conn/s, server CPU ${((cpu / COUNT) * 1e6).toFixed(1)} us/conn (failed ${sum.failed}, p99 ${sum.latencyMs.p99} ms${note})`,
          );
        }
      }
    }
  }
} finally {
  await sandbox.close();
  log(`load average at the end: ${load()}`);
}

const rows = [];
for (const mode of MODES) {
  for (const c of CONCURRENCIES) {
    const C = median(results[`C|${mode}|${c}`]);
    const raw = median(results[`raw|${mode}|${c}`]);
    const node = median(results[`node|${mode}|${c}`]);
    const ratio = (x) => Math.round((x / C) * 100) / 100;
    const us = (k) => Math.round(median(cpuPerConn[`${k}|${mode}|${c}`]) * 10) / 10;
    rows.push({
      mode,
      concurrency: c,
      cServer: C,
      raw,
      node,
      rawToC: ratio(raw),
      nodeToC: ratio(node),
      cpuUsPerConn: { C: us('C'), raw: us('raw'), node: us('node') },
    });
  }
}
if (JSON_OUT) {
  process.stdout.write(
    `${JSON.stringify({ kernel: sandbox.kernel, count: COUNT, rounds: ROUNDS, rows, results, cpuPerConn }, null, 2)}\n`,
  );
} else {
  console.log(
    '\nmedian connections/s seen by the same client (twlab churn), 1 sandbox, loopback, tw_reuse=1',
  );
  console.log(
    'mode          concurrency   C server   serve raw  serve node   raw/C  node/C   server CPU us/conn C/raw/node',
  );
  for (const r of rows) {
    const cpu = r.cpuUsPerConn;
    console.log(
      `${r.mode.padEnd(13)} ${String(r.concurrency).padStart(11)} ${String(r.cServer).padStart(10)} ${String(r.raw).padStart(11)} ${String(r.node).padStart(11)} ${r.rawToC.toFixed(2).padStart(7)} ${r.nodeToC.toFixed(2).padStart(7)}   ${cpu.C} / ${cpu.raw} / ${cpu.node}`,
    );
  }
  console.log('(CPU per connection bounds what one core can serve: 1e6 / us = connections per second)');
}
