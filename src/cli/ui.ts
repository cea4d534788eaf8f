/**
 * `twlab ui`: a local web dashboard: every network namespace on the host, most at risk first, and
 * for the one chosen the live census with its TCP state diagram, port pressure with the model's
 * forecast and doctor's findings; a predict form, and lab claims run on demand.
 */
import type { Command } from 'commander';
import { action } from './command.js';
import { addLocalServerOptions, serveUntilStopped, type LocalServerFlags } from './shared-options.js';

export function registerUi(program: Command): void {
  const cmd = program
    .command('ui')
    .description(
      'A local web dashboard: every namespace on the host; live states, port pressure, findings; predict, lab runs',
    );
  addLocalServerOptions(cmd, '127.0.0.1:7411')
    .addHelpText(
      'after',
      `
Examples:
  twlab ui                               open http://127.0.0.1:7411/
  twlab ui --listen 127.0.0.1:0 --json   a free port; prints {"url": ...}
  twlab sandbox -- twlab ui              watch a fresh namespace

The host view lists every network namespace (containers, pods, services) most at risk
first; click one for its panels. Reading other namespaces needs root (CAP_SYS_ADMIN), as
census -A does; a view stops starting reads after 1 s and reads the rest next time.

Every POST needs the token embedded in the served page; requests from other origins or
under another Host name are refused (403): the listen address, localhost for loopback, this
machine's name and (for 0.0.0.0 or ::) its addresses are answered; --allow-host NAME adds a name.
Predictions run in a worker thread, one at a time, stopped after 120 s. One lab run at a time.`,
    )
    .action(
      action(async (flags: LocalServerFlags) => {
        const { startUi } = await import('../ui/server.js');
        await serveUntilStopped(
          flags,
          { name: 'ui', verb: 'open', exposes: "sees this host's sockets and can read the page's token" },
          () =>
            startUi({ host: flags.listen.host, port: flags.listen.port, allowHosts: flags.allowHost ?? [] }),
        );
      }),
    );
}
