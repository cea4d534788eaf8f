#!/usr/bin/env node
/**
 * bench/exporter: how long one Prometheus scrape of `twlab exporter` takes with a big socket
 * table, side by side in ONE sandbox and one run with `ss -tan state time-wait | wc -l` (the
 * reference). Each scrape is a fresh census (sock_diag pass + TIME_WAIT histogram pass + sysctls
 * + counters), timed as `curl` sees it (request to last byte). Not a test: numbers depend on the
 * machine. The target is a scrape under 500 ms at 100,000 sockets.
 *
 *   npm run bench:exporter [-- --sockets N --ports P --rounds R --json]
 *
 * Sockets come from bench/census/tw-maker.c (N client-side TIME_WAIT sockets over P destination
 * ports); bench/census/timeit.py times the commands interleaved. TIME_WAIT lasts 60 s, so all
 * rounds must finish within it: the bench checks the scrape still saw N.
 */
/* global process, console */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchArgs, benchSandbox, compileC, log, median, twlabArgv } from '../lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const censusBench = join(here, '..', 'census');
const args = benchArgs();
const N = args.num('--sockets', 100_000);
const PORTS = args.num('--ports', 4);
const ROUNDS = args.num('--rounds', 5);
const JSON_OUT = args.json;
const PORT = 9477;

const maker = compileC('census-tw-maker', join(censusBench, 'tw-maker.c'));

const sandbox = await benchSandbox({ tcp_max_tw_buckets: Math.max(262144, 2 * N), tcp_tw_reuse: 0 });
try {
  const host = sandbox.client;
  const exporter = host.spawn(twlabArgv('exporter', '--listen', `127.0.0.1:${PORT}`));
  await new Promise((resolve, reject) => {
    exporter.stderr.on('data', (d) => String(d).includes('serving') && resolve());
    exporter.on('exit', (c) => reject(new Error(`exporter exited ${c}`)));
  });
  log(`bench/exporter: making ${N} TIME_WAIT sockets over ${PORTS} destination ports...`);
  const made = await host.exec([maker, '80', String(PORTS), String(N)], { timeoutMs: 70_000 });
  if (made.code !== 0) throw new Error(`tw-maker exited ${made.code}: ${made.stderr}`);
  const m = JSON.parse(made.stdout);
  log(`  made ${m.made} in ${m.seconds} s`);

  const url = `http://127.0.0.1:${PORT}/metrics`;
  const cmds = {
    'scrape (curl /metrics)': ['curl', '-sf', url],
    'ss -tan state time-wait | wc -l': ['sh', '-c', 'ss -tan state time-wait | wc -l'],
  };
  const t = await host.exec(
    ['python3', join(censusBench, 'timeit.py'), String(ROUNDS), JSON.stringify(cmds)],
    {
      timeoutMs: 120_000,
    },
  );
  if (t.code !== 0) throw new Error(`timeit exited ${t.code}: ${t.stderr}`);
  const res = JSON.parse(t.stdout);
  const last = await host.exec(['curl', '-sf', url]);
  const seen = Number(/^twlab_tcp_sockets\{state="TIME-WAIT"\} (\d+)/m.exec(last.stdout)?.[1]);
  const censusSec = Number(/^twlab_census_duration_seconds (\S+)/m.exec(last.stdout)?.[1]);
  exporter.kill('SIGTERM');

  const [scrape, ss] = Object.keys(cmds);
  const summary = {
    sockets: m.made,
    rounds: ROUNDS,
    scrapeMedianMs: median(res[scrape].ms),
    scrapeMaxMs: Math.max(...res[scrape].ms),
    ssMedianMs: median(res[ss].ms),
    ratioToSs: Math.round((median(res[scrape].ms) / median(res[ss].ms)) * 100) / 100,
    censusInExporterMs: Math.round(censusSec * 1000),
    timeWaitSeen: seen,
    target: { scrapeMs: 500 },
    // The rounds' own curl connections add TIME_WAIT sockets (curl closes first): at least N.
    met: median(res[scrape].ms) < 500 && seen >= m.made,
    load: (await host.exec(['cat', '/proc/loadavg'])).stdout.trim(),
  };
  if (JSON_OUT) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  else {
    console.log(`${m.made} TIME_WAIT sockets, ${ROUNDS} rounds (wall ms)`);
    console.log(
      `scrape: median ${summary.scrapeMedianMs}, max ${summary.scrapeMaxMs} (census inside: ${summary.censusInExporterMs})`,
    );
    console.log(
      `ss -tan state time-wait | wc -l: median ${summary.ssMedianMs}; scrape/ss ${summary.ratioToSs}`,
    );
    console.log(
      `TIME-WAIT seen by the scrape: ${seen}; target < 500 ms: ${summary.met ? 'met' : 'NOT met'} (load ${summary.load})`,
    );
  }
} finally {
  await sandbox.close();
}
