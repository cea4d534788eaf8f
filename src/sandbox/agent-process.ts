/**
 * twlab's side of one host's agent: starts it, waits for it to be ready, sends requests and
 * routes the replies (results, events, errors) to the callers by id.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { RunError, UsageError } from '../common/errors.js';
import { CHANNEL_FD, deserialiseError } from './protocol.js';
import type { Reply, Request } from './protocol.js';
import type { Tools } from './tools.js';

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  onEvent: ((event: unknown) => void) | undefined;
}

/** Last bytes of the agent's stderr kept for error messages. */
const STDERR_KEEP = 4096;

/**
 * The agent's environment: twlab's, minus NODE_OPTIONS (a test runner's loader or an --inspect
 * port meant for twlab would slow the agent down or clash), plus where `ip` is.
 */
function agentEnv(tools: Tools): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, TWLAB_IP: tools.ip };
  delete env['NODE_OPTIONS'];
  return env;
}

/** The line of a failed start that says why: a JS error line if Node crashed, else the last line. */
function summariseStderr(text: string): string {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !/^Node\.js v\d/.test(l));
  return lines.find((l) => /^[A-Z]\w*Error\b/.test(l)) ?? lines.pop() ?? '';
}

type Payload<R> = R extends unknown ? Omit<R, 'id'> : never;

export class AgentProcess {
  /** The agent's pid as twlab sees it (set once ready). */
  pid = 0;
  /** The agent's network namespace, "net:[inode]" (set once ready). */
  netns = '';
  private readonly child: ChildProcess;
  private readonly channel: Socket;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private stderrTail = '';
  private exited = false;
  private readonly exitedPromise: Promise<void>;
  private ready = false;
  private closing = false;

  constructor(
    readonly name: string,
    argv: string[],
    tools: Tools,
  ) {
    this.child = spawn(argv[0]!, argv.slice(1), {
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
      env: agentEnv(tools),
    });
    this.channel = this.child.stdio[CHANNEL_FD] as Socket;
    // Diagnostics of the agent (and of code it calls) go to our stderr once it runs.
    for (const stream of [this.child.stdout, this.child.stderr]) {
      stream!.setEncoding('utf8').on('data', (d: string) => {
        // unshare's own complaints while being killed are noise; drop output once closing.
        if (this.closing) return;
        if (this.ready) process.stderr.write(d);
        else this.stderrTail = (this.stderrTail + d).slice(-STDERR_KEEP);
      });
    }
    this.exitedPromise = new Promise((resolve) => {
      this.child.on('close', () => {
        this.exited = true;
        this.failPending(new RunError(`sandbox host ${this.name}: its agent exited`));
        resolve();
      });
    });
    this.child.on('error', () => undefined); // reported through 'close' and the startup error
    // A forgotten sandbox must not keep Node alive; pending requests hold it (see refresh()).
    this.child.unref();
    for (const s of [this.child.stdout, this.child.stderr] as Socket[]) s.unref();
    this.channel.unref();
  }

  /** Resolves once the agent reports ready; a RunError if it exits first or takes too long. */
  async started(timeoutMs: number): Promise<void> {
    const lines = createInterface({ input: this.channel, crlfDelay: Infinity });
    // An agent killed while its channel is being read (an interrupted lab) can leave the read
    // with ECONNRESET, which readline re-emits; its death is reported through the child's
    // 'close' (every pending call fails), so the error itself is only a symptom.
    lines.on('error', () => undefined);
    let onReady: (r: Extract<Reply, { type: 'ready' }>) => void = () => undefined;
    const ready = new Promise<Extract<Reply, { type: 'ready' }>>((resolve) => (onReady = resolve));
    lines.on('line', (line) => {
      let reply: Reply;
      try {
        reply = JSON.parse(line) as Reply;
      } catch {
        return;
      }
      if (reply.type === 'ready') onReady(reply);
      else this.onReply(reply);
    });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    const spawnError = new Promise<Error>((resolve) => this.child.once('error', resolve));
    const outcome = await Promise.race([
      ready,
      this.exitedPromise.then(() => 'exited' as const),
      timeout,
      spawnError,
    ]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      this.kill();
      throw new RunError(`sandbox host ${this.name}: the agent did not start within ${timeoutMs} ms`);
    }
    if (outcome === 'exited' || outcome instanceof Error) {
      const why = outcome instanceof Error ? outcome.message : summariseStderr(this.stderrTail);
      throw new RunError(`sandbox host ${this.name}: could not start: ${why || 'the agent exited'}`);
    }
    this.pid = outcome.pid;
    this.netns = outcome.netns;
    this.ready = true;
    if (this.stderrTail) process.stderr.write(this.stderrTail);
  }

  /** Send one request; events (from `call`) go to onEvent; the reply settles the promise. */
  request<T>(req: Payload<Request>, onEvent?: (event: unknown) => void): Promise<T> {
    if (this.exited) return Promise.reject(new RunError(`sandbox host ${this.name}: its agent is gone`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, onEvent });
      this.refresh();
      this.channel.write(`${JSON.stringify({ ...req, id })}\n`);
    });
  }

  private onReply(reply: Exclude<Reply, { type: 'ready' }>): void {
    const p = this.pending.get(reply.id);
    if (!p) return;
    if (reply.type === 'event') {
      p.onEvent?.(reply.event);
      return;
    }
    this.pending.delete(reply.id);
    this.refresh();
    if (reply.type === 'result') p.resolve(reply.value);
    else p.reject(deserialiseError(reply.error, { UsageError, RunError }));
  }

  /** Keep Node's event loop alive exactly while requests are outstanding. */
  private refresh(): void {
    if (this.pending.size > 0) this.channel.ref();
    else this.channel.unref();
  }

  private failPending(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    this.refresh();
  }

  /**
   * Kill synchronously (safe in an 'exit' handler): the agent first, since its death as pid 1
   * takes its whole pid namespace with it; then unshare, in case the agent is not known yet.
   */
  kill(): void {
    this.closing = true;
    if (this.exited) return;
    for (const pid of [this.pid, this.child.pid]) {
      if (!pid) continue;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }

  /** Kill and wait until unshare has reaped the agent (so the pid namespace is gone). */
  async close(): Promise<void> {
    this.closing = true;
    if (this.pid) {
      try {
        process.kill(this.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    } else {
      this.kill();
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.exitedPromise,
      new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          this.kill();
          resolve();
        }, 5_000);
      }),
    ]);
    clearTimeout(timer);
  }
}
