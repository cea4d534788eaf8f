/**
 * Sandboxes die with twlab. On SIGKILL the kernel does it (parent-death signal, pid namespace);
 * on a normal exit or an unhandled SIGINT/SIGTERM/SIGHUP these handlers kill what is still open.
 * The handlers are installed only while a sandbox is open, and a signal handler steps aside when
 * the program has its own (the program then decides; 'exit' still cleans up).
 */

interface Killable {
  killNow(): void;
}

const open = new Set<Killable>();
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

function killAll(): void {
  for (const box of open) box.killNow();
  open.clear();
}

function onSignal(signal: NodeJS.Signals): void {
  if (process.listenerCount(signal) > 1) return;
  killAll();
  uninstall();
  // Die of the signal as if we had never handled it (exit status 128+n for the shell).
  process.kill(process.pid, signal);
}

function install(): void {
  process.on('exit', killAll);
  for (const s of SIGNALS) process.on(s, onSignal);
}

function uninstall(): void {
  process.off('exit', killAll);
  for (const s of SIGNALS) process.off(s, onSignal);
}

export function killOnExit(box: Killable): void {
  if (open.size === 0) install();
  open.add(box);
}

export function forgetOnExit(box: Killable): void {
  if (!open.delete(box)) return;
  if (open.size === 0) uninstall();
}
