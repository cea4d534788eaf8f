/* global process, setTimeout, clearTimeout */
/**
 * What every sandboxed bench shares: its flags, the build directory for the C references, the
 * sandbox they all run in, the load average they print next to each figure, and a retry for a
 * twlab that could not start because another engineer is rebuilding dist/ in this shared tree.
 * Needs a built dist/ (npm run build).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSandbox } from '../dist/sandbox/index.js';

export { twlabArgv } from '../dist/common/paths.js';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));

/** bench/build: compiled C references (not committed). */
export const BUILD_DIR = join(BENCH_DIR, 'build');

/** bench/census: tw-maker.c and timeit.py, shared by the census, census-all and exporter benches. */
const CENSUS_DIR = join(BENCH_DIR, 'census');

/** Progress goes to stderr, so --json leaves stdout one document. */
export const log = (msg) => process.stderr.write(`${msg}\n`);

/**
 * The bench's flags: `num('--count', 1000)` is the number after --count (or the default);
 * `str('--baseline')` the word after --baseline (or undefined); `json` is whether --json was given.
 */
export function benchArgs(argv = process.argv.slice(2)) {
  return {
    num(name, dflt) {
      const i = argv.indexOf(name);
      if (i < 0) return dflt;
      const v = Number(argv[i + 1]);
      if (!Number.isFinite(v) || v <= 0) {
        log(`${name}: '${argv[i + 1] ?? ''}' is not a positive number`);
        process.exit(2);
      }
      return v;
    },
    str(name) {
      const i = argv.indexOf(name);
      if (i < 0) return undefined;
      if (!argv[i + 1] || argv[i + 1].startsWith('--')) {
        log(`${name}: needs a value`);
        process.exit(2);
      }
      return argv[i + 1];
    },
    json: argv.includes('--json'),
  };
}

/** Compile `source` (C) into bench/build/`name` with cc -O2; returns the binary's path. */
export function compileC(name, source) {
  mkdirSync(BUILD_DIR, { recursive: true });
  const out = join(BUILD_DIR, name);
  execFileSync('cc', ['-O2', '-Wall', '-o', out, source], { stdio: 'inherit' });
  return out;
}

let maker;
/** bench/census/tw-maker.c, compiled once per run (see there: `maker PORT0 PORTS N` leaves N TIME_WAIT sockets). */
export function twMaker() {
  maker ??= compileC('census-tw-maker', join(CENSUS_DIR, 'tw-maker.c'));
  return maker;
}

/** The argv of bench/census/timeit.py: `cmds` (name -> argv) timed `rounds` times, interleaved; prints JSON. */
export function timeitArgv(rounds, cmds) {
  return ['python3', join(CENSUS_DIR, 'timeit.py'), String(rounds), JSON.stringify(cmds)];
}

/** Run argv to completion (SIGKILL after `timeoutMs`): its stdout, or a rejection with its exit and stderr. */
export function runArgv(argv, timeoutMs = 120_000) {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (err = (err + d).slice(-4000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${argv.join(' ').slice(0, 80)} exited ${code}: ${err.slice(-300)}`));
    });
  });
}

/**
 * `n` TIME_WAIT sockets over `ports` destination ports from 80 in each light host (tw-maker run
 * through host.enter), `parallel` hosts at a time; returns the seconds it took.
 */
export async function makeTimeWaitIn(hosts, n, ports, parallel) {
  const bin = twMaker();
  const t = Date.now();
  for (let i = 0; i < hosts.length; i += parallel)
    await Promise.all(
      hosts.slice(i, i + parallel).map((h) => runArgv(h.enter([bin, '80', String(ports), String(n)]))),
    );
  return (Date.now() - t) / 1000;
}

/**
 * The sandbox every bench runs in: one host, ports 1024-65535 (so the kernel's port range is not
 * the limit), plus the bench's own sysctls.
 */
export function benchSandbox(sysctls) {
  return createSandbox({ hosts: 1, portRange: { low: 1024, high: 65535 }, sysctls });
}

/** The 1, 5 and 15 minute load averages, as /proc/loadavg prints them. */
export function loadAverage() {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

/** The median (the lower of the two middle values for an even count). */
export function median(xs) {
  return [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
}

/**
 * `host.exec(argv)`, run again (up to 6 times, 10 s apart) when twlab failed to load its own
 * modules: a shared working tree can be mid-rebuild, with a dist/ file half written.
 */
export async function execRetryingRebuild(host, argv, opts) {
  let r = await host.exec(argv, opts);
  for (
    let retry = 1;
    retry <= 6 && r.code !== 0 && /SyntaxError|ERR_MODULE_NOT_FOUND/.test(r.stderr);
    retry++
  ) {
    const why = r.stderr
      .split('\n')
      .find((l) => /Error/.test(l))
      ?.trim();
    log(`  twlab did not start (${why}); retry ${retry} in 10 s`);
    await new Promise((res) => setTimeout(res, 10_000));
    r = await host.exec(argv, opts);
  }
  return r;
}
