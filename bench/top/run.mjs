#!/usr/bin/env node
/**
 * bench/top: does `twlab top` lose events, and does it say so? In one sandbox (ports 1024-65535,
 * tcp_tw_reuse=1 with a 1 ms delay, so the port range is not the limit), the C epoll server of
 * bench/churn on 127.0.0.1:80 and `twlab churn` at increasing target rates (concurrency 64, no
 * stop on error), each rate with its own `twlab top --json --port 80` running beside it in the
 * same namespace. Per rate: what churn says it did (attempted, succeeded, its own rate), what top
 * counted (connects, accepts, events read), and what top reported lost against the real loss:
 * every loopback connection makes 10 state changes (5 a side), so the state changes that should
 * have been read are 10 x succeeded + 2 x failed (a failed connect: CLOSE -> SYN-SENT -> CLOSE),
 * and the real loss is that minus what top read (its failed connect() returns, which carry no
 * port to filter on, are not counted on either side). Not a test.
 *
 *   node bench/top/run.mjs [-- --seconds S --buffer-kb KB --json] [--rates 5000,20000]
 */
/* global process, console, setTimeout */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchArgs, benchSandbox, compileC, loadAverage, log, twlabArgv } from '../lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const args = benchArgs();
const SECONDS = args.num('--seconds', 5);
const BUFFER_KB = args.num('--buffer-kb', 8192);
const ri = process.argv.indexOf('--rates');
const RATES = (ri > 0 ? process.argv[ri + 1] : '5000,20000').split(',').map(Number);
const PORT = 80;

const cServer = compileC('churn-server', join(here, '..', 'churn', 'server.c'));
const box = await benchSandbox({ tcp_tw_reuse: 1, tcp_tw_reuse_delay: 1 });
const host = box.client;
const load = { start: loadAverage() };
const rows = [];
try {
  const server = host.spawn([cServer, '127.0.0.1', String(PORT), '900']);
  await new Promise((resolve, reject) => {
    server.stdout.on('data', (d) => String(d).includes('listening') && resolve());
    server.on('exit', (c) => reject(new Error(`server exited ${c}`)));
    setTimeout(() => reject(new Error('server did not listen within 10 s')), 10_000);
  });
  for (const rate of RATES) {
    log(`rate ${rate}/s: top and churn for ${SECONDS} s (load ${loadAverage()})`);
    const topArgv = twlabArgv(
      ...['top', '--json', '--port', String(PORT), '--buffer-kb', String(BUFFER_KB)],
      ...['--duration', String(SECONDS + 8), '--interval', '60'],
    );
    const top = host.spawn(topArgv);
    let topOut = '';
    let topErr = '';
    top.stdout.setEncoding('utf8').on('data', (d) => (topOut += d));
    const ready = new Promise((resolve) =>
      top.stderr.setEncoding('utf8').on('data', (d) => {
        topErr += d;
        if (/tracefs instance \S+\n/.test(topErr)) resolve();
      }),
    );
    const topDone = new Promise((resolve) => top.on('close', resolve));
    await Promise.race([ready, topDone]);
    const churnArgv = twlabArgv(
      ...['churn', '--to', `127.0.0.1:${PORT}`, '--rate', String(rate), '--duration', String(SECONDS)],
      ...['--concurrency', '64', '--no-stop-on-error', '--json'],
    );
    const churn = await host.exec(churnArgv, { timeoutMs: (SECONDS + 60) * 1000 });
    const code = await topDone;
    if (churn.code !== 0 || code !== 0)
      throw new Error(`churn ${churn.code} ${churn.stderr} / top ${code} ${topErr}`);
    const c = JSON.parse(churn.stdout);
    const t = JSON.parse(topOut);
    const sum = (k) => t.processes.reduce((a, p) => a + p[k], 0);
    const expected = 10 * c.succeeded + 2 * c.failed;
    rows.push({
      target: rate,
      churn: {
        attempted: c.attempted,
        succeeded: c.succeeded,
        failed: c.failed,
        rate: Math.round((c.attempted * 1000) / c.durationMs),
      },
      top: {
        connects: sum('connects'),
        accepts: sum('accepts'),
        eventsRead: t.eventsRead,
        lostReported: t.lost.events,
      },
      eventsExpected: expected,
      lostReal: expected - t.eventsRead,
    });
  }
  server.kill('SIGKILL');
} finally {
  await box.close();
}
load.end = loadAverage();

if (args.json) console.log(JSON.stringify({ seconds: SECONDS, bufferKb: BUFFER_KB, load, rows }, null, 2));
else {
  console.log(
    `load average ${load.start} -> ${load.end}; ${SECONDS} s per rate, ring buffer ${BUFFER_KB} KB per CPU`,
  );
  console.log(
    'target/s  churn/s  attempted  connects(top)  accepts(top)  events expected  read  lost real  lost reported',
  );
  for (const r of rows)
    console.log(
      [
        String(r.target).padStart(8),
        String(r.churn.rate).padStart(8),
        String(r.churn.attempted).padStart(10),
        String(r.top.connects).padStart(14),
        String(r.top.accepts).padStart(13),
        String(r.eventsExpected).padStart(16),
        String(r.top.eventsRead).padStart(5),
        String(r.lostReal).padStart(10),
        String(r.top.lostReported).padStart(14),
      ].join(' '),
    );
}
