#!/usr/bin/env node
/**
 * bench/top: does `twlab top` lose events, and does it say so? In one sandbox (ports 1024-65535,
 * tcp_tw_reuse=1 with a 1 ms delay, so the port range is not the limit), the C epoll server of
 * bench/churn on 127.0.0.1:947 and `twlab churn` at increasing target rates (concurrency 64, no
 * stop on error), each rate with its own `twlab top --json --port 947` beside it in the same
 * namespace, stopped (SIGINT) once churn is done. The truth is the kernel's own count: a second
 * tracefs instance with the same event and filter and a ring buffer big enough for the whole run
 * (checked: its overrun must be 0), never read, whose per-CPU `entries` say how many state changes
 * there were. Per rate: churn's own counts and rate, what top read and counted, the real loss
 * (kernel's count - top's read) and the loss top reported. Not a test.
 *
 * With `--baseline DIR` (another twlab checkout, built), every rate runs with that twlab's top and
 * with this one's, in the same sandbox against the same server: a before/after in one run. The
 * order alternates from rate to rate (the second of a pair meets the first's TIME-WAIT sockets);
 * repeat a rate (`--rates 5000,5000`) to see it both ways.
 *
 *   node bench/top/run.mjs [--seconds S --buffer-kb KB --json] [--rates 5000,20000] [--baseline DIR]
 */
/* global process, console, setTimeout */
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchArgs, benchSandbox, compileC, loadAverage, log, twlabArgv } from '../lib.mjs';
import { findTracefs, TraceInstance } from '../../dist/observe/tracefs.js';

/** The twlab CLIs to compare: this checkout's, and --baseline's first when given. */
function variants(baseline) {
  const own = { name: 'this', argv: (...a) => twlabArgv(...a) };
  if (!baseline) return [own];
  const main = join(baseline, 'dist', 'cli', 'main.js');
  if (!existsSync(main)) {
    log(`--baseline: ${main} does not exist (build that checkout first)`);
    process.exit(2);
  }
  return [{ name: 'baseline', argv: (...a) => [process.execPath, main, ...a] }, own];
}

const here = dirname(fileURLToPath(import.meta.url));
const args = benchArgs();
const SECONDS = args.num('--seconds', 5);
const BUFFER_KB = args.num('--buffer-kb', 8192);
/** The reference's ring buffer per CPU: ~80 bytes an event, 11 events a connection. */
const REF_KB = 65536;
const ri = process.argv.indexOf('--rates');
const RATES = (ri > 0 ? process.argv[ri + 1] : '5000,20000').split(',').map(Number);
/** Below the port range, and not a port other benches on this shared machine use. */
const PORT = 947;
const VARIANTS = variants(args.str('--baseline'));

/** Sum of a per-CPU stats field of a tracefs instance. */
function perCpu(inst, field) {
  let n = 0;
  for (const cpu of readdirSync(join(inst.path, 'per_cpu'))) {
    const stats = readFileSync(join(inst.path, 'per_cpu', cpu, 'stats'), 'utf8');
    n += Number(new RegExp(`^${field}:\\s*(\\d+)`, 'm').exec(stats)?.[1] ?? 0);
  }
  return n;
}

/** One rate: top beside churn, the reference instance counting what the kernel emitted. */
async function measure(root, host, rate, variant) {
  const ref = await TraceInstance.create(root);
  try {
    await ref.setBufferKb(REF_KB);
    await ref.enableEvent(
      'sock',
      'inet_sock_set_state',
      `protocol == 6 && (sport == ${PORT} || dport == ${PORT})`,
    );
    const top = host.spawn(
      variant.argv(
        'top',
        '--json',
        '--port',
        String(PORT),
        '--buffer-kb',
        String(BUFFER_KB),
        '--interval',
        '3600',
      ),
    );
    let topOut = '';
    let topErr = '';
    top.stdout.setEncoding('utf8').on('data', (d) => (topOut += d));
    const topDone = new Promise((resolve) => top.on('close', resolve));
    const ready = new Promise((resolve) =>
      top.stderr.setEncoding('utf8').on('data', (d) => {
        topErr += d;
        if (/tracefs instance \S+\n/.test(topErr)) resolve();
      }),
    );
    await Promise.race([ready, topDone]);
    const churnArgv = twlabArgv(
      ...['churn', '--to', `127.0.0.1:${PORT}`, '--rate', String(rate), '--duration', String(SECONDS)],
      ...['--concurrency', '64', '--no-stop-on-error', '--json'],
    );
    const churn = await host.exec(churnArgv, { timeoutMs: (SECONDS + 60) * 1000 });
    await new Promise((r) => setTimeout(r, 1000)); // the server's last closes
    top.kill('SIGINT');
    const code = await topDone;
    writeFileSync(join(ref.path, 'tracing_on'), '0');
    if (churn.code !== 0 || code !== 130)
      throw new Error(`churn ${churn.code} ${churn.stderr} / top ${code} ${topErr}`);
    const c = JSON.parse(churn.stdout);
    const t = JSON.parse(topOut);
    const sum = (k) => t.processes.reduce((a, p) => a + p[k], 0);
    const kernel = perCpu(ref, 'entries');
    return {
      variant: variant.name,
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
      kernel: { events: kernel, referenceOverrun: perCpu(ref, 'overrun') },
      lostReal: kernel - t.eventsRead,
    };
  } finally {
    await ref.remove();
  }
}

const cServer = compileC('churn-server', join(here, '..', 'churn', 'server.c'));
const root = await findTracefs();
const box = await benchSandbox({ tcp_tw_reuse: 1, tcp_tw_reuse_delay: 1 });
const load = { start: loadAverage() };
const rows = [];
try {
  const server = box.client.spawn([cServer, '127.0.0.1', String(PORT), '900']);
  await new Promise((resolve, reject) => {
    server.stdout.on('data', (d) => String(d).includes('listening') && resolve());
    server.on('exit', (c) => reject(new Error(`server exited ${c}`)));
    setTimeout(() => reject(new Error('server did not listen within 10 s')), 10_000);
  });
  for (const [i, rate] of RATES.entries()) {
    // Alternate which variant goes first: the second runs beside the first's TIME-WAIT sockets
    // (60 s, in the same namespace: a bigger table for its look-ups), which costs it loss.
    for (const variant of i % 2 ? [...VARIANTS].reverse() : VARIANTS) {
      log(`rate ${rate}/s, ${variant.name}: top and churn for ${SECONDS} s (load ${loadAverage()})`);
      rows.push({ ...(await measure(root, box.client, rate, variant)), load: loadAverage() });
    }
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
    'variant   target/s  churn/s  attempted  connects(top)  accepts(top)  kernel events  top read  lost real  lost reported  ref overrun  load',
  );
  for (const r of rows)
    console.log(
      [
        r.variant.padEnd(8),
        String(r.target).padStart(9),
        String(r.churn.rate).padStart(8),
        String(r.churn.attempted).padStart(10),
        String(r.top.connects).padStart(14),
        String(r.top.accepts).padStart(13),
        String(r.kernel.events).padStart(14),
        String(r.top.eventsRead).padStart(9),
        String(r.lostReal).padStart(10),
        String(r.top.lostReported).padStart(14),
        String(r.kernel.referenceOverrun).padStart(12),
        ` ${r.load.split(' ')[0]}`,
      ].join(' '),
    );
}
