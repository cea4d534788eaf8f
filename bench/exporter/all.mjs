#!/usr/bin/env node
/**
 * bench/exporter/all: one Prometheus scrape of `twlab exporter -A` on a host of many network
 * namespaces (sandbox light hosts, NS x TW TIME_WAIT sockets, default 200 x 500), timed as curl
 * sees it (the operator's nsenter + ss loop is bench/census-all's reference). The exporter and curl
 * run in a sandbox host (its loopback); the exporter reads every namespace of the machine, other
 * people's included. Checks: every TIME_WAIT socket made is in some series (the top
 * --max-namespaces by risk get their own, netns="other" sums the rest), and the scrape stays the
 * same size whatever NS is. Not a test.
 *
 *   npm run build && node bench/exporter/all.mjs [-- --namespaces NS --tw TW --rounds R --json]
 */
/* global process, console */
import { readFileSync, readdirSync } from 'node:fs';
import {
  benchArgs,
  benchSandbox,
  loadAverage,
  log,
  makeTimeWaitIn,
  median,
  timeitArgv,
  twlabArgv,
} from '../lib.mjs';
import { createLightHosts } from '../../dist/sandbox/light-hosts.js';

const args = benchArgs();
const NS = args.num('--namespaces', 200);
const TW = args.num('--tw', 500);
const ROUNDS = args.num('--rounds', 5);
const PORT = 9478;

/** Peak RSS (VmHWM) of the process whose command line has all of `words`, in MB. */
function peakRssMB(words) {
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (cmd[0] !== process.execPath || !words.every((w) => cmd.includes(w))) continue;
      const kb = Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
      return Math.round(kb / 102.4) / 10;
    } catch {
      // exited meanwhile
    }
  }
  return null;
}

const sandbox = await benchSandbox({});
const lh = await createLightHosts(NS, { sysctls: { tcp_tw_reuse: 0 } });
try {
  const host = sandbox.client;
  log(`bench/exporter/all: ${NS} namespaces x ${TW} TIME_WAIT...`);
  log(`  made in ${await makeTimeWaitIn(lh.hosts, TW, 1, 8)} s`);
  const exporter = host.spawn(twlabArgv('exporter', '-A', '--listen', `127.0.0.1:${PORT}`));
  await new Promise((resolve, reject) => {
    exporter.stderr.on('data', (d) => String(d).includes('serving') && resolve());
    exporter.on('exit', (c) => reject(new Error(`exporter exited ${c}`)));
  });
  const url = `http://127.0.0.1:${PORT}/metrics`;
  // First, while every TIME_WAIT socket made is still there (they last 60 s from their making).
  const body = (await host.exec(['curl', '-sf', url])).stdout;
  const cmds = { 'scrape -A (curl /metrics)': ['curl', '-sf', url] };
  const t = await host.exec(timeitArgv(ROUNDS, cmds), { timeoutMs: 300_000 });
  if (t.code !== 0) throw new Error(`timeit exited ${t.code}: ${t.stderr}`);
  const res = JSON.parse(t.stdout);
  const rss = peakRssMB(['exporter', '-A', `127.0.0.1:${PORT}`]);
  exporter.kill('SIGTERM');

  const value = (re) => Number(re.exec(body)?.[1]);
  const tw = [...body.matchAll(/^twlab_tcp_sockets\{netns="(\d+|other)"[^}]*state="TIME-WAIT"\} (\d+)/gm)];
  const [scrape] = Object.keys(cmds);
  const summary = {
    namespaces: NS,
    timeWaitEach: TW,
    rounds: ROUNDS,
    scrapeMedianMs: median(res[scrape].ms),
    scrapeMinMs: Math.min(...res[scrape].ms),
    readInExporterMs: Math.round(value(/^twlab_census_duration_seconds (\S+)/m) * 1000),
    exporterPeakRssMB: rss,
    namespacesSeen: value(/^twlab_netns_seen (\d+)/m),
    namespacesFolded: value(/^twlab_netns_folded (\d+)/m),
    seriesWithNetns: tw.length,
    timeWaitExported: tw.reduce((a, m) => a + Number(m[2]), 0),
    timeWaitMade: NS * TW,
    scrapeBytes: body.length,
    load: loadAverage(),
  };
  if (args.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  else {
    console.log(`${NS} namespaces x ${TW} TIME_WAIT, ${ROUNDS} rounds (wall ms, curl's fork to exit)`);
    console.log(
      `scrape -A: median ${summary.scrapeMedianMs}, min ${summary.scrapeMinMs} (reading inside: ${summary.readInExporterMs})`,
    );
    console.log(
      `exporter peak RSS ${rss} MB; ${summary.namespacesSeen} namespaces seen, ${summary.namespacesFolded} folded into "other"; ${summary.seriesWithNetns} TIME-WAIT series, ${summary.scrapeBytes} bytes; TIME-WAIT exported ${summary.timeWaitExported} >= made ${summary.timeWaitMade} (load ${summary.load})`,
    );
  }
} finally {
  await lh.close();
  await sandbox.close();
}
