/**
 * twlab's one signal and exit path. Everything that must not outlive the process (a sandbox's
 * agents, a tracefs instance, a tracefs mount twlab made) registers a synchronous release here
 * and forgets it on its normal close; this module alone listens for SIGINT, SIGTERM and SIGHUP.
 *
 * On a signal, in the CLI (`exitOnSignals()`): one line "twlab: interrupted" on stderr, then the
 * command's interrupt handler if it has one, then every release (last registered first), then
 * exit 128+n (130, 143, 129). A handler either prints what was done so far and lets twlab exit
 * at once ('exit'), or makes the command stop early and print its summary itself ('finish');
 * then the exit code is still 128+n, and a second signal or GRACE_MS end the process at once.
 *
 * As a library (no exitOnSignals), the releases run on 'exit' and on a signal nobody else
 * handles, and the process then dies of the signal as it would have without us; when the
 * embedding program has its own listener for that signal, it decides (its exit still releases).
 */
import { constants } from 'node:os';

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** How long a command that is finishing after a signal may take before it is ended at once. */
export const GRACE_MS = 10_000;

type Handler = { run: (signal: NodeJS.Signals) => void; then: 'exit' | 'finish' };

const releases = new Set<() => void>();
const handlers = new Set<Handler>();
const passers = new Set<(signal: NodeJS.Signals) => void>();
let asCommand = false;
let installed = false;
let interrupted: NodeJS.Signals | undefined;

/** The exit status of a process ended by `signal`, as a shell reports it (128+n). */
export function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (constants.signals[signal] ?? 0);
}

/** The signal that interrupted this process, once one did (not counting passed-on ones). */
export function interruptedBy(): NodeJS.Signals | undefined {
  return interrupted;
}

/** Run every registered release once, newest first; a failing one does not stop the others. */
function releaseAll(): void {
  const all = [...releases].reverse();
  releases.clear();
  for (const release of all) {
    try {
      release();
    } catch {
      // best effort: the process is ending
    }
  }
}

function onExit(): void {
  releaseAll();
  if (asCommand && interrupted) process.exitCode = signalExitCode(interrupted);
}

function end(signal: NodeJS.Signals): void {
  releaseAll();
  if (asCommand) process.exit(signalExitCode(interrupted ?? signal));
  uninstall();
  process.kill(process.pid, signal);
}

function onSignal(signal: NodeJS.Signals): void {
  if (passers.size > 0) {
    for (const pass of passers) pass(signal);
    return;
  }
  if (!asCommand && process.listenerCount(signal) > 1) return;
  if (interrupted !== undefined) return end(signal);
  interrupted = signal;
  if (asCommand) process.stderr.write('twlab: interrupted\n');
  let finishing = false;
  for (const h of [...handlers]) {
    try {
      h.run(signal);
    } catch {
      // a handler that fails must not keep the process from ending
    }
    if (h.then === 'finish') finishing = true;
  }
  if (!finishing) return end(signal);
  // unref: when the command finishes first, the process exits on its own (with 128+n, onExit).
  setTimeout(() => end(signal), GRACE_MS).unref();
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', onExit);
  for (const s of SIGNALS) process.on(s, onSignal);
}

function uninstall(): void {
  if (!installed) return;
  installed = false;
  process.off('exit', onExit);
  for (const s of SIGNALS) process.off(s, onSignal);
}

/** Keep listening only while someone needs it (a library must not keep hooks it no longer needs). */
function sync(): void {
  if (asCommand || releases.size > 0 || handlers.size > 0 || passers.size > 0) install();
  else uninstall();
}

/** The CLI's choice for the whole process: a signal says so and exits 128+n (see above). */
export function exitOnSignals(): void {
  asCommand = true;
  sync();
}

/**
 * Run `release` (synchronous, quick, idempotent) if the process ends before the returned
 * `forget` is called: on exit, on an uncaught exception, on SIGINT/SIGTERM/SIGHUP. SIGKILL
 * cannot be caught: what must survive it is the kernel's job (see each resource).
 */
export function releaseOnExit(release: () => void): () => void {
  const own = (): void => release();
  releases.add(own);
  sync();
  return () => {
    releases.delete(own);
    sync();
  };
}

/**
 * What the running command does on its first signal, before twlab exits 128+n. 'exit': `run`
 * prints the partial result synchronously and twlab exits right after. 'finish': `run` makes the
 * command stop early; it prints its summary and returns as usual. Returns the unregister call.
 */
export function onInterrupt(run: (signal: NodeJS.Signals) => void, then: 'exit' | 'finish'): () => void {
  const h: Handler = { run, then };
  handlers.add(h);
  sync();
  return () => {
    handlers.delete(h);
    sync();
  };
}

/**
 * While registered, every signal goes to `pass` and nothing else happens (no message, no exit
 * code of ours): `twlab sandbox -- CMD` passes signals on to CMD like a shell and exits with
 * CMD's status. Releases still run on exit.
 */
export function passSignals(pass: (signal: NodeJS.Signals) => void): () => void {
  passers.add(pass);
  sync();
  return () => {
    passers.delete(pass);
    sync();
  };
}
