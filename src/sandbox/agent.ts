/**
 * The agent: the first process (pid 1) of a sandbox host's pid namespace, holding its network
 * namespace. It applies the host's setup (ip commands, sysctls) and runs calls into twlab's own
 * modules, driven by JSON lines on fd 3. It exits when that channel closes, i.e. when twlab is
 * gone; as pid 1, its exit makes the kernel kill every other process of the host.
 *
 * Run only by src/sandbox (node dist/sandbox/agent.js), never by hand.
 */
import { execFile } from 'node:child_process';
import { readlinkSync, writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { CHANNEL_FD, serialiseError } from './protocol.js';
import type { Reply, Request, SysctlResult, SysctlWrite } from './protocol.js';
import { readSysctl, sysctlPath } from '../observe/sysctl.js';

const channel = new Socket({ fd: CHANNEL_FD, readable: true, writable: true });
channel.on('error', () => process.exit(0));
channel.on('close', () => process.exit(0));

function send(reply: Reply): void {
  let line: string;
  try {
    line = JSON.stringify(reply);
  } catch (err) {
    // A result or event JSON cannot carry (BigInt, a cycle) fails the call, not the agent.
    if (reply.type === 'ready') throw err;
    line = JSON.stringify({ type: 'error', id: reply.id, error: serialiseError(err) });
  }
  channel.write(`${line}\n`);
}

// Code run by `call` may throw outside its promise; report it and keep the host alive.
process.on('uncaughtException', (err) => process.stderr.write(`twlab agent: ${err.stack ?? String(err)}\n`));
process.on('unhandledRejection', (err) => process.stderr.write(`twlab agent: ${String(err)}\n`));

/** The netns of the host twlab runs in: sysctl writes are refused if we are still in it. */
let hostNetns: string | undefined;
const ownNetns = readlinkSync('/proc/self/ns/net');

function errnoOf(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? String(err);
}

function writeSysctl({ key, value }: SysctlWrite): SysctlResult {
  if (hostNetns === undefined || hostNetns === ownNetns) {
    throw new Error(`agent: refusing to write ${key}: not in a network namespace of its own`);
  }
  const requested = value;
  if (readSysctl(key) === undefined) return { key, requested, status: 'not-present' };
  try {
    writeFileSync(sysctlPath(key), `${value}\n`);
  } catch (err) {
    return { key, requested, status: 'rejected', reason: errnoOf(err) };
  }
  return { key, requested, status: 'applied', value: readSysctl(key) ?? '' };
}

/** Run a program inside this host with `input` on its stdin; reject with its stderr. */
function runWithInput(program: string, args: string[], input: string, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = execFile(program, args, { timeout: 10_000 }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`${what}: ${stderr.trim() || err.message}`));
      else resolve();
    });
    child.stdin?.end(input);
  });
}

/** Run `ip -batch -` inside this host (found where iproute2 lives, even if PATH lacks sbin). */
function ip(lines: string[]): Promise<void> {
  if (lines.length === 0) return Promise.resolve();
  const program = process.env['TWLAB_IP'] ?? 'ip';
  return runWithInput(program, ['-batch', '-'], lines.join('\n') + '\n', `ip ${lines.join('; ')}`);
}

/**
 * Wait until an interface is operationally UP. Bringing a link up finishes asynchronously (the
 * kernel's linkwatch attaches the qdisc up to a second later); until then packets are dropped.
 */
async function waitUp(ifname: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const state = await new Promise<string>((resolve) =>
      execFile(process.env['TWLAB_IP'] ?? 'ip', ['-o', 'link', 'show', 'dev', ifname], (_e, out) =>
        resolve(out),
      ),
    );
    if (/ state UP /.test(state)) return;
    if (Date.now() > deadline)
      throw new Error(`agent: ${ifname} not up after ${timeoutMs} ms: ${state.trim()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Calls a twlab module's exported function; `module` is relative to dist/. With `events`, an
 * `emit` follows the arguments; without, nothing does (an optional parameter stays undefined).
 */
async function call(
  id: number,
  module: string,
  fn: string,
  args: unknown[],
  events: boolean,
): Promise<unknown> {
  if (!/^[\w-]+(\/[\w.-]+)*\.js$/.test(module) || module.split('/').includes('..')) {
    throw new Error(`agent: module '${module}' is not a path relative to dist/ ending in .js`);
  }
  const mod = (await import(new URL(`../${module}`, import.meta.url).href)) as Record<string, unknown>;
  const f = mod[fn];
  if (typeof f !== 'function') throw new Error(`agent: ${module} has no exported function '${fn}'`);
  const emit = (event: unknown): void => send({ type: 'event', id, event });
  return await (f as (...a: unknown[]) => unknown)(...args, ...(events ? [emit] : []));
}

async function handle(req: Request): Promise<unknown> {
  switch (req.op) {
    case 'setup': {
      hostNetns = req.hostNetns;
      if (hostNetns === ownNetns) throw new Error('agent: not in a network namespace of its own');
      await ip(req.ip);
      // Before the sysctls: on a modular kernel the ruleset loads nf_conntrack, whose sysctls
      // (net.netfilter.*) exist only from then on.
      if (req.nft) await runWithInput(req.nft.path, ['-f', '-'], req.nft.ruleset, 'nft -f -');
      return req.sysctls.map(writeSysctl);
    }
    case 'ip':
      await ip(req.lines);
      if (req.waitUp) await waitUp(req.waitUp, 3_000);
      return null;
    case 'readSysctl':
      return readSysctl(req.key) ?? null;
    case 'call':
      return call(req.id, req.module, req.fn, req.args, req.events);
  }
}

createInterface({ input: channel, crlfDelay: Infinity }).on('line', (line) => {
  let req: Request;
  try {
    req = JSON.parse(line) as Request;
  } catch {
    return;
  }
  handle(req).then(
    (value) => send({ type: 'result', id: req.id, value: value ?? null }),
    (err: unknown) => send({ type: 'error', id: req.id, error: serialiseError(err) }),
  );
});

// /proc is the parent's mount, so /proc/self names this process as twlab sees it.
send({ type: 'ready', pid: Number(readlinkSync('/proc/self')), netns: ownNetns });
