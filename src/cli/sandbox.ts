/**
 * `twlab sandbox [--hosts 1|2|3] [--nat A-B] [--port-range A-B] [--sysctl K=V]... [--host ROLE] -- CMD`:
 * run CMD inside a fresh sandbox host with the terminal handed over; exit with CMD's status.
 */
import type { Command } from 'commander';
import { constants } from 'node:os';
import { UsageError } from '../common/errors.js';
import { passSignals } from '../common/exit.js';
import { parseChoice } from '../common/parse.js';
import { createSandbox } from '../sandbox/index.js';
import type { HostRole, Sandbox, SysctlOutcome } from '../sandbox/index.js';
import { action, option } from './command.js';
import { addSandboxOptions, sandboxSpecFromOptions } from './sandbox-options.js';
import type { SandboxCliOptions } from './sandbox-options.js';

interface SandboxCommandOptions extends SandboxCliOptions {
  host: HostRole;
}

/** After a forwarded signal, CMD gets this long to exit before it is killed. */
const SIGNAL_GRACE_MS = 5_000;

/** One stderr line per sysctl that did not simply take the requested value. */
export function describeSysctl(o: SysctlOutcome): string | undefined {
  const where = o.hosts.length > 1 ? ` (${o.hosts.join(', ')})` : '';
  if (o.status === 'not-present') return `sysctl ${o.key}: not present on this kernel`;
  if (o.status === 'rejected')
    return `sysctl ${o.key}=${o.requested}: rejected by the kernel (${o.reason})${where}`;
  if (o.value !== o.requested) return `sysctl ${o.key}=${o.requested}: the kernel kept ${o.value}${where}`;
  return undefined;
}

function exitStatus(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  return 128 + (signal ? (constants.signals[signal] ?? 0) : 0);
}

async function runInSandbox(box: Sandbox, role: HostRole, argv: string[]): Promise<number> {
  const env: NodeJS.ProcessEnv = {
    TWLAB_CLIENT_ADDR: box.client.address,
    TWLAB_SERVER_ADDR: box.server.address,
  };
  if (box.nat) env['TWLAB_NAT_ADDR'] = box.nat.address;
  // The router's agent pid as /proc shows it in every host: `trace --conntrack-netns` reads its events.
  if (box.router) env['TWLAB_ROUTER_PID'] = String(box.router.pid);
  const child = (box[role] ?? box.client).spawn(argv, { stdio: 'inherit', env });
  let graceTimer: NodeJS.Timeout | undefined;
  // Like a shell: a signal sent to twlab is passed on to CMD, which decides (bounded by a grace).
  const forward = (signal: NodeJS.Signals): void => {
    child.kill(signal);
    graceTimer ??= setTimeout(() => child.kill('SIGKILL'), SIGNAL_GRACE_MS);
  };
  const forget = passSignals(forward);
  try {
    return await new Promise<number>((resolve, reject) => {
      child.on('error', reject);
      child.on('exit', (code, signal) => resolve(exitStatus(code, signal)));
    });
  } finally {
    clearTimeout(graceTimer);
    forget();
  }
}

export function registerSandbox(program: Command): void {
  const cmd = program
    .command('sandbox')
    .description(
      'Run CMD in a fresh, throw-away network namespace (1 host, a client and a server host joined ' +
        'by a veth pair, or client - NAT router - server) with the given per-namespace sysctls; ' +
        'nothing is left behind afterwards.',
    )
    .argument('[cmd...]', 'the program to run and its arguments, after --');
  addSandboxOptions(cmd)
    .option(
      '--host <role>',
      'which host CMD runs in: client (198.51.100.1), server (198.51.100.2; 203.0.113.2 with --nat) or router (--nat)',
      option((t) => parseChoice(t, '--host', ['client', 'router', 'server'] as const)),
      'client',
    )
    .addHelpText(
      'after',
      `
CMD gets twlab's terminal; twlab exits with CMD's status (128+n if killed by signal n).
CMD sees TWLAB_CLIENT_ADDR and TWLAB_SERVER_ADDR (127.0.0.1 with 1 host), and with --nat
TWLAB_NAT_ADDR (the router's address towards the server, which the server sees as the client's)
and TWLAB_ROUTER_PID (a process in the router's namespace: twlab trace --conntrack-netns).
Sysctls the kernel lacks or refuses are reported on stderr, e.g.
  twlab: sysctl net.ipv4.tcp_tw_recycle: not present on this kernel

Examples:
  twlab sandbox -- ip addr
  twlab sandbox --port-range 50000-50099 --sysctl tcp_tw_reuse=0 -- sh -c 'cat /proc/sys/net/ipv4/ip_local_port_range'
  twlab sandbox --hosts 2 --host server -- twlab serve --listen 198.51.100.2:8080
  twlab sandbox --hosts 2 -- sh -c 'twlab serve --listen $TWLAB_SERVER_ADDR:8080 & sleep 0.5; twlab churn --to $TWLAB_SERVER_ADDR:8080 --count 100'
  twlab sandbox --nat 40000-40099 --sysctl net.netfilter.nf_conntrack_tcp_timeout_time_wait=10 --host router -- conntrack -L`,
    )
    .action(
      action(async (argv: string[], opts: SandboxCommandOptions) => {
        if (argv.length === 0) {
          throw new UsageError('sandbox: missing CMD (usage: twlab sandbox [options] -- CMD [ARGS...])');
        }
        const spec = sandboxSpecFromOptions(opts);
        if (opts.host === 'router' && !spec.nat) {
          throw new UsageError('--host router: needs --nat LOW-HIGH (only the NAT sandbox has a router)');
        }
        const box = await createSandbox(spec);
        try {
          for (const o of box.sysctls) {
            const line = describeSysctl(o);
            if (line) process.stderr.write(`twlab: ${line}\n`);
          }
          return await runInSandbox(box, opts.host, argv);
        } finally {
          await box.close();
        }
      }),
    );
}
