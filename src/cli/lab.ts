/**
 * `twlab lab`: run the claims ledger (every claim from the seeds, judged by this kernel) and the
 * fixes table, print the report (text or --json).
 */
import { release } from 'node:os';
import type { Command } from 'commander';
import { closeSync, existsSync, openSync, unlinkSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { RunError, UsageError, messageOf } from '../common/errors.js';
import { interruptedBy, onInterrupt } from '../common/exit.js';
import type { CloseSequence } from '../lab/close-sequences.js';
import { parseIntInRange, show } from '../common/parse.js';
import { createSandbox } from '../sandbox/index.js';
import { CLAIMS, isNatClaim } from '../lab/registry.js';
import { FIXES, NAT_FIXES } from '../lab/fixes.js';
import { runLab, defaultJobs } from '../lab/runner.js';
import { createProgress } from '../lab/runner-progress.js';
import { renderLabReport } from './lab-text.js';
import type { LabReport } from '../lab/types.js';
import { EXIT_FAILED, EXIT_OK, action, option, printJson } from './command.js';

/** The pseudo-id that selects the fixes table in --only. */
export const FIXES_ID = 'fixes';
/** The pseudo-id that selects the NAT family: its claims (N-*) and the NAT rows of the fixes table. */
export const NAT_ID = 'nat';

/** "S0-01,s1-05" -> ['S0-01', 'S1-05'], each checked against the ledger. */
export function parseOnly(text: string): string[] {
  const accepted = [...CLAIMS.map((c) => c.id), FIXES_ID, NAT_ID];
  const pseudo = [FIXES_ID, NAT_ID];
  const ids = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => (pseudo.includes(s.toLowerCase()) ? s.toLowerCase() : s.toUpperCase()));
  if (ids.length === 0)
    throw new UsageError(`--only: ${show(text)} names no claim (accepted: ${accepted.join(', ')})`);
  for (const id of ids) {
    if (!accepted.includes(id)) {
      throw new UsageError(`--only: unknown claim id ${show(id)} (accepted: ${accepted.join(', ')})`);
    }
  }
  return [...new Set(ids)];
}

/** One line per experiment that crashed (its claim shows as not-tested): what and why. */
export function crashedExperiments(report: LabReport): string[] {
  return [
    ...report.claims.filter((c) => c.error).map((c) => `${c.id}: ${c.error}`),
    ...report.fixes.filter((f) => f.error).map((f) => `fix ${f.id}: ${f.error}`),
  ];
}

/**
 * --html FILE: it must be writable now, not after a long run. Opening it for append is the only
 * check that sees everything the final write would meet (permissions, a read-only or full-inode
 * filesystem, a folder of that name, immutable files, root's own limits); a file that did not
 * exist is removed again right away.
 */
export function parseHtmlPath(text: string): string {
  const accepted = 'accepted: a writable file path, e.g. report.html';
  if (!text.trim() || !existsSync(dirname(resolve(text))))
    throw new UsageError(`--html: ${show(text)} is not in an existing folder (${accepted})`);
  const existed = existsSync(text);
  try {
    closeSync(openSync(text, 'a'));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new UsageError(`--html: cannot write ${show(text)}: ${e.code ?? messageOf(err)} (${accepted})`);
  }
  if (!existed) unlinkSync(text);
  return text;
}

async function recordSequences(signal: AbortSignal): Promise<CloseSequence[]> {
  const { recordCloseSequences } = await import('../lab/close-sequences.js');
  return recordCloseSequences(createSandbox, { signal }).catch((err: unknown) => {
    process.stderr.write(`twlab: lab: close sequences not recorded: ${messageOf(err)}\n`);
    return [];
  });
}

async function writeHtml(
  file: string,
  report: LabReport,
  sequences: Promise<CloseSequence[]>,
): Promise<void> {
  const { writeLabHtml } = await import('../report/html.js');
  try {
    writeLabHtml(file, { report, sequences: await sequences });
  } catch (err) {
    throw new RunError(`--html: cannot write ${show(file)}: ${messageOf(err)}`);
  }
  process.stderr.write(`twlab: lab: HTML report written to ${file}\n`);
}

interface LabOptions {
  only?: string[];
  json?: boolean;
  jobs?: number;
  html?: string;
}

export function registerLab(program: Command): void {
  program
    .command('lab')
    .description(
      'Test every claim about TIME_WAIT from the seeds on this kernel (fresh network namespaces), then measure the fixes',
    )
    .option(
      '--only <ids>',
      `comma-separated claim ids to run, '${FIXES_ID}' for the fixes table, '${NAT_ID}' for the NAT family (N-* and its fixes)`,
      option(parseOnly),
    )
    .option('--json', 'print one JSON document (docs/lab.schema.json) on stdout')
    .option(
      '--jobs <n>',
      `experiments run at once (default ${defaultJobs()}: most of them wait on kernel timers)`,
      option((t) => parseIntInRange(t, '--jobs', 1, 64)),
    )
    .option(
      '--html <file>',
      'also write the report as one self-contained HTML file (charts, traced close sequences)',
      option(parseHtmlPath),
    )
    .addHelpText(
      'after',
      `
Examples:
  twlab lab                      every claim and the fixes table (about 1-2 minutes)
  twlab lab --html report.html   the same, plus an HTML report to open in a browser
  twlab lab --only S0-02,S0-08   two claims
  twlab lab --only fixes --json  only the fixes table, as JSON
  twlab lab --only nat           the NAT family: claims N-01..N-06 and the NAT remedies`,
    )
    .action(
      action(async (opts: LabOptions) => {
        const only = opts.only;
        // The NAT family runs when asked for (--only nat, or its ids): with it the whole lab
        // would take over 120 s on a loaded 2-core machine (README, "The lab").
        const nat = only?.includes(NAT_ID) ?? false;
        const claims = only
          ? CLAIMS.filter((c) => only.includes(c.id) || (nat && isNatClaim(c.id)))
          : CLAIMS.filter((c) => !isNatClaim(c.id));
        const fixes = [...(!only || only.includes(FIXES_ID) ? FIXES : []), ...(nat ? NAT_FIXES : [])];
        const progress = createProgress(process.stderr, claims.length + fixes.length);
        const controller = new AbortController();
        // A signal aborts every experiment; the lab closes its sandboxes and prints what it judged.
        const forgetInterrupt = onInterrupt(() => controller.abort(new Error('interrupted')), 'finish');
        // An experiment abandoned at its budget may leave a call into a sandbox that fails once
        // the sandbox is closed. Say so on stderr; it must not take the whole lab down.
        const onStray = (err: unknown): void => {
          process.stderr.write(
            `twlab: lab: a call failed after its experiment had ended: ${messageOf(err)}\n`,
          );
        };
        process.on('unhandledRejection', onStray);
        let report;
        // The close variants are traced while the lab runs (own ports, own sandbox).
        const sequences = opts.html ? recordSequences(controller.signal) : undefined;
        try {
          report = await runLab({
            claims,
            fixes,
            createSandbox,
            kernel: release(),
            signal: controller.signal,
            onEvent: (e) => progress.onEvent(e),
            ...(opts.jobs ? { jobs: opts.jobs } : {}),
          });
        } finally {
          progress.finish();
          forgetInterrupt();
          process.off('unhandledRejection', onStray);
        }
        const interrupted = interruptedBy() !== undefined;
        // Interrupted: a partial report (the claims not judged say so), no HTML, no crash lines.
        if (opts.html && !interrupted) await writeHtml(opts.html, report, sequences!);
        if (opts.json) printJson(report);
        else process.stdout.write(renderLabReport(report));
        if (interrupted) return EXIT_FAILED; // the exit path makes it 128+n
        const crashed = crashedExperiments(report);
        for (const line of crashed) process.stderr.write(`twlab: lab: experiment crashed: ${line}\n`);
        return crashed.length > 0 ? EXIT_FAILED : EXIT_OK;
      }),
    );
}
