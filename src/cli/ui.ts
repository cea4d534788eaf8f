/**
 * `twlab ui`: a local web dashboard: the live census with its TCP state diagram, port pressure
 * with the model's forecast, a predict form, and lab claims run on demand.
 */
import type { Command } from 'commander';
import { parseHostPort, parseNumberInRange, type HostPort } from '../common/parse.js';
import { action, option, printJson } from './command.js';

interface UiFlags {
  listen: HostPort;
  duration?: number;
  json?: boolean;
}

export function registerUi(program: Command): void {
  program
    .command('ui')
    .description('A local web dashboard: live TCP states, port pressure with forecasts, predict, lab runs')
    .option(
      '--listen <host:port>',
      'address to serve on (loopback by default; any other address prints a warning)',
      option((t) => parseHostPort(t, '--listen', { allowZeroPort: true })),
      parseHostPort('127.0.0.1:7411', '--listen'),
    )
    .option(
      '--duration <seconds>',
      'stop after this long (default: until SIGINT/SIGTERM)',
      option((t) => parseNumberInRange(t, '--duration', 0.1, 31_536_000)),
    )
    .option('--json', 'print one JSON document ({"url": ...}) on stdout once listening')
    .addHelpText(
      'after',
      `
Examples:
  twlab ui                               open http://127.0.0.1:7411/
  twlab ui --listen 127.0.0.1:0 --json   a free port; prints {"url": ...}
  twlab sandbox -- twlab ui              watch a fresh namespace

Every POST needs the token embedded in the served page; requests from other origins or
under another Host name are refused (403). One lab run at a time.`,
    )
    .action(
      action(async (flags: UiFlags) => {
        const { startUi } = await import('../ui/server.js');
        const { isLoopback } = await import('../exporter/server.js');
        if (!isLoopback(flags.listen.host)) {
          process.stderr.write(
            `twlab: warning: --listen ${flags.listen.host} is not loopback: anyone who reaches it sees this host's sockets and can read the page's token\n`,
          );
        }
        const ui = await startUi({ host: flags.listen.host, port: flags.listen.port });
        if (flags.json) printJson({ url: ui.url });
        else process.stderr.write(`twlab ui: open ${ui.url}\n`);
        await new Promise<void>((resolve) => {
          process.once('SIGINT', () => resolve());
          process.once('SIGTERM', () => resolve());
          if (flags.duration !== undefined) setTimeout(resolve, flags.duration * 1000).unref();
        });
        await ui.close();
      }),
    );
}
