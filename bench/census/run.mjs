#!/usr/bin/env node
/**
 * bench/census: how fast `twlab census --json` reads a big socket table, side by side in ONE
 * sandbox and one run with `ss -tan state time-wait | wc -l` (the reference) and with reading
 * and parsing /proc/net/tcp (awk, and twlab's own /proc reader). Wall time from fork to exit,
 * Node start-up included, and twlab's peak RSS. Not a test: numbers depend on the machine.
 *
 *   npm run bench:census [-- --sockets N --ports P --rounds R --json --baseline DIR]
 *
 * --baseline DIR adds `twlab-before`: another built checkout's census (DIR/dist/cli/main.js),
 * interleaved with the others, so a change is measured against the code before it.
 *
 * tw-maker.c leaves N client-side TIME_WAIT sockets (client closes first, server second) spread
 * over P destination ports, with ports 1024-65535, tcp_max_tw_buckets raised and tcp_tw_reuse=0
 * so that nothing limits or recycles them. TIME_WAIT lasts 60 s, so creation and all rounds must finish within it: the bench
 * checks that every tool still saw N sockets. Needs a built dist/ and cc.
 */
/* global process, console */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchArgs, benchSandbox, compileC, log, median, twlabArgv } from '../lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const args = benchArgs();
const N = args.num('--sockets', 100_000);
const PORTS = args.num('--ports', 4);
const ROUNDS = args.num('--rounds', 11);
const JSON_OUT = args.json;
const BASELINE = args.str('--baseline');
const BASE = 80; // below the ephemeral range

const maker = compileC('census-tw-maker', join(here, 'tw-maker.c'));

const sandbox = await benchSandbox({
  // tcp_tw_reuse=0: otherwise (2, loopback) connect() recycles TIME_WAIT tuples and fewer than N remain.
  tcp_max_tw_buckets: Math.max(262144, 2 * N),
  tcp_tw_reuse: 0,
});
try {
  const host = sandbox.client;
  log(`bench/census: making ${N} TIME_WAIT sockets over ${PORTS} destination ports...`);
  const made = await host.exec([maker, String(BASE), String(PORTS), String(N)], { timeoutMs: 70_000 });
  if (made.code !== 0) throw new Error(`tw-maker exited ${made.code}: ${made.stderr}`);
  const m = JSON.parse(made.stdout);
  log(`  made ${m.made} in ${m.seconds} s (${m.failed} failed connects)`);

  const cmds = {
    twlab: twlabArgv('census', '--json'),
    ss: ['sh', '-c', 'ss -tan state time-wait | wc -l'],
    'awk /proc/net/tcp': ['awk', '$4 == "06" { n++ } END { print n + 0 }', '/proc/net/tcp', '/proc/net/tcp6'],
    'twlab --source procfs': twlabArgv('census', '--json', '--source', 'procfs'),
    ...(BASELINE && {
      'twlab-before': [process.execPath, join(BASELINE, 'dist', 'cli', 'main.js'), 'census', '--json'],
    }),
  };
  const t = await host.exec(['python3', join(here, 'timeit.py'), String(ROUNDS), JSON.stringify(cmds)], {
    timeoutMs: 120_000,
  });
  if (t.code !== 0) throw new Error(`timeit exited ${t.code}: ${t.stderr}`);
  const res = JSON.parse(t.stdout);

  const seen = {
    twlab: Number(/"TIME-WAIT": (\d+)/.exec(res.twlab.out)?.[1]),
    ss: Number(res.ss.out.trim()) - 1, // minus the header line
    'awk /proc/net/tcp': Number(res['awk /proc/net/tcp'].out.trim()),
    'twlab --source procfs': Number(/"TIME-WAIT": (\d+)/.exec(res['twlab --source procfs'].out)?.[1]),
    'twlab-before': Number(/"TIME-WAIT": (\d+)/.exec(res['twlab-before']?.out ?? '')?.[1]),
  };
  const ssMs = median(res.ss.ms);
  const rows = Object.keys(cmds).map((name) => ({
    name,
    medianMs: median(res[name].ms),
    minMs: Math.min(...res[name].ms),
    ratioToSs: Math.round((median(res[name].ms) / ssMs) * 100) / 100,
    medianCpuMs: median(res[name].cpuMs),
    cpuRatioToSs: Math.round((median(res[name].cpuMs) / median(res.ss.cpuMs)) * 100) / 100,
    peakRssMB: Math.round(Math.max(...res[name].maxRssKB) / 102.4) / 10,
    timeWaitSeen: seen[name],
  }));
  const summary = {
    sockets: m.made,
    ports: PORTS,
    rounds: ROUNDS,
    rows,
    target: { ratioToSs: 1.0, peakRssMB: 150 },
    met: rows[0].ratioToSs <= 1.0 && rows[0].peakRssMB < 150 && rows[0].timeWaitSeen === m.made,
    cpus: (await host.exec(['nproc'])).stdout.trim(),
    load: (await host.exec(['cat', '/proc/loadavg'])).stdout.trim(),
  };
  if (JSON_OUT) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  else {
    console.log(
      `${m.made} TIME_WAIT sockets, ${PORTS} destination ports, ${ROUNDS} rounds (median wall ms, Node start-up included)`,
    );
    console.log(
      'tool                   median    min  ratio/ss  cpu ms  cpu ratio  peak RSS  TIME-WAIT seen',
    );
    for (const r of rows) {
      console.log(
        `${r.name.padEnd(25)} ${String(r.medianMs).padStart(7)} ${String(r.minMs).padStart(6)} ${String(r.ratioToSs).padStart(9)} ${String(r.medianCpuMs).padStart(7)} ${String(r.cpuRatioToSs).padStart(10)} ${`${r.peakRssMB} MB`.padStart(9)}  ${r.timeWaitSeen}`,
      );
    }
    console.log(
      `target: twlab/ss <= 1.0 and peak < 150 MB: ${summary.met ? 'met' : 'NOT met'} (load ${summary.load})`,
    );
  }
} finally {
  await sandbox.close();
}
