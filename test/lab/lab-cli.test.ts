/**
 * `twlab lab` as a user runs it: --only validation (one line, exit 2), a real --json run of fast
 * claims validated against docs/lab.schema.json, the same verdicts when run twice, nothing but
 * the JSON document on stdout, and a real crash (no namespace can be made): exit 1, the claim
 * shown as not-tested with the reason, stderr naming it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Ajv } from 'ajv';
import { CLI, runCli } from '../helpers/cli.js';
import { describeNs, descendants, stillAlive, waitFor, type ProcInfo } from '../helpers/sandbox.js';
import type { LabReport } from '../../src/lab/types.js';
import { crashedExperiments, parseOnly } from '../../src/cli/lab.js';

const schema = JSON.parse(
  readFileSync(new URL('../../docs/lab.schema.json', import.meta.url), 'utf8'),
) as object;
const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);

const isRoot = process.getuid?.() === 0;
/** Runs a command as nobody (uid 65534), as test/sandbox/cleanup.test.ts does. */
const AS_NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--'];

describe('twlab lab: usage', () => {
  it('an unknown id in --only: one line naming it and the accepted ids, exit 2', async () => {
    const r = await runCli(['lab', '--only', 'S0-01,S9-99']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("'S9-99'");
    expect(lines[0]).toContain('S0-01');
    expect(lines[0]).toContain('fixes');
  });

  it('an empty --only and a bad --jobs are usage errors too', async () => {
    const empty = await runCli(['lab', '--only', ',']);
    expect(empty.code).toBe(2);
    expect(empty.stderr.trim().split('\n')).toHaveLength(1);
    const jobs = await runCli(['lab', '--jobs', '0']);
    expect(jobs.code).toBe(2);
    expect(jobs.stderr).toContain('--jobs');
  });

  it('parseOnly: case-insensitive ids, fixes, duplicates dropped', () => {
    expect(parseOnly('s0-02, S0-08,fixes,S0-02')).toEqual(['S0-02', 'S0-08', 'fixes']);
    expect(() => parseOnly('S0-2')).toThrow(/unknown claim id 'S0-2'/);
    // The NAT family: 'nat' (any case) selects it, its ids work one by one.
    expect(parseOnly('NAT,n-03')).toEqual(['nat', 'N-03']);
    expect(() => parseOnly('N-99')).toThrow(/accepted: .*N-06, fixes, nat/);
  });

  it('a crashed experiment is named with its reason (the CLI then exits 1)', () => {
    const report = {
      kernel: 'k',
      startedAt: '',
      durationMs: 0,
      claims: [
        { id: 'S0-01', error: undefined },
        { id: 'S0-07', error: 'time budget of 100 s spent' },
      ],
      fixes: [{ id: 'udp', error: 'server did not start' }],
    } as unknown as LabReport;
    expect(crashedExperiments(report)).toEqual([
      'S0-07: time budget of 100 s spent',
      'fix udp: server did not start',
    ]);
    expect(crashedExperiments({ ...report, claims: [], fixes: [] })).toEqual([]);
  });

  it('--html to a place it cannot write: one line, exit 2, before any experiment runs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'twlab-html-'));
    try {
      // A folder only root may write to, and a folder where the file should be.
      chmodSync(dir, 0o755);
      mkdirSync(join(dir, 'taken.html'));
      const cases: (readonly [prefix: string[], file: string, message: RegExp])[] = [
        [[], 'taken.html', /cannot write '.*taken\.html': EISDIR/],
        ...(isRoot ? [[AS_NOBODY, 'report.html', /cannot write '.*report\.html': EACCES/] as const] : []),
      ];
      for (const [prefix, file, message] of cases) {
        const argv = [...prefix, process.execPath, CLI, 'lab', '--only', 'S0-02', '--html', join(dir, file)];
        const t0 = Date.now();
        const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 30_000 });
        expect(r.status, r.stderr).toBe(2);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(r.stderr).toMatch(message);
        expect(r.stderr).not.toContain('started');
        expect(Date.now() - t0).toBeLessThan(10_000);
      }
      expect(readdirSync(dir)).toEqual(['taken.html']); // the check left no file behind
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('--help shows examples', async () => {
    const r = await runCli(['lab', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Examples:');
    expect(r.stdout).toContain('--only');
  });
});

describeNs('twlab lab: real runs', () => {
  const FAST = 'S0-02,S0-08,S0-11';
  const run = async (): Promise<{ doc: LabReport; stderr: string; code: number | null }> => {
    const r = await runCli(['lab', '--only', FAST, '--json'], { timeoutMs: 90_000 });
    return { doc: JSON.parse(r.stdout) as LabReport, stderr: r.stderr, code: r.code };
  };

  it('--json: one document on stdout, valid against the schema; run twice, the same verdicts', async () => {
    const first = await run();
    expect(first.code).toBe(0);
    expect(validate(first.doc), JSON.stringify(validate.errors)).toBe(true);
    expect(first.doc.claims.map((c) => c.id)).toEqual(['S0-02', 'S0-08', 'S0-11']);
    expect(first.doc.fixes).toEqual([]);
    for (const c of first.doc.claims) {
      expect(c.verdict).not.toBe('not-tested');
      expect(c.evidence['kernel']).toBe(first.doc.kernel);
    }
    const second = await run();
    expect(second.code).toBe(0);
    expect(second.doc.claims.map((c) => c.verdict)).toEqual(first.doc.claims.map((c) => c.verdict));
  }, 180_000);

  it('text: each claim with its verdict, source and evidence, and the total time', async () => {
    const r = await runCli(['lab', '--only', 'S0-02'], { timeoutMs: 60_000 });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^S0-02 {2}(CONFIRMED|REFUTED)/m);
    expect(r.stdout).toContain('000_27c8c704027fe916.txt');
    expect(r.stdout).toMatch(/freshNamespaceRange = \d+ \d+/);
    expect(r.stdout).toMatch(/Total \d+\.\d s\./);
    // Not a terminal: plain progress lines on stderr.
    expect(r.stderr).toContain('lab: S0-02 started');
  }, 60_000);
});

describeNs('twlab lab: interrupted', () => {
  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)(
    '%s: "interrupted" (not "crashed"), the partial report, exit %i, no sandbox left',
    async (signal, code) => {
      const child = spawn(process.execPath, [CLI, 'lab', '--only', 'S0-04'], { stdio: 'pipe' });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
      try {
        const agents = (): ProcInfo[] =>
          descendants(child.pid!).filter((p) => p.cmdline.includes('sandbox/agent.js'));
        expect(await waitFor(() => agents().length > 0, 30_000)).toBe(true);
        const procs = descendants(child.pid!);
        child.kill(signal);
        expect(await exited, stderr).toBe(code);
        expect(stderr).toMatch(/^twlab: interrupted$/m);
        expect(stderr).not.toMatch(/crashed/);
        expect(stdout).toMatch(/^S0-04 {2}NOT-TESTED/m);
        expect(stdout).toMatch(/interrupted/);
        expect(await waitFor(() => stillAlive(procs).length === 0, 10_000)).toBe(true);
      } finally {
        child.kill('SIGKILL');
      }
    },
    60_000,
  );
});

describe('twlab lab: an experiment that really crashes', () => {
  // The same throw-away place as test/sandbox/cli.test.ts's "no namespace can be made": a user
  // namespace allowing no further user namespaces, entered without capabilities. The sandbox
  // cannot start there, so the claim's experiment fails for a real reason, not a mock.
  const labWithoutNamespaces = (args: string[]): { code: number | null; stdout: string; stderr: string } => {
    const r = spawnSync(
      'unshare',
      [
        '--user',
        '--map-root-user',
        '--',
        'sh',
        '-c',
        'echo 0 > /proc/sys/user/max_user_namespaces && exec setpriv --bounding-set -all --inh-caps -all -- "$@"',
        'sh',
        process.execPath,
        CLI,
        'lab',
        ...args,
      ],
      { encoding: 'utf8', timeout: 30_000 },
    );
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const REASON =
    /cannot create a network namespace .*needs root \(CAP_SYS_ADMIN\) or unprivileged user namespaces/;

  it.runIf(isRoot)('--json: exit 1, the claim not-tested with the reason, stderr naming it', () => {
    const r = labWithoutNamespaces(['--only', 'S0-02', '--json']);
    expect(r.code, r.stderr).toBe(1);
    const doc = JSON.parse(r.stdout) as LabReport;
    expect(validate(doc), JSON.stringify(validate.errors)).toBe(true);
    expect(doc.claims).toHaveLength(1);
    const [c] = doc.claims;
    expect(c).toMatchObject({ id: 'S0-02', verdict: 'not-tested' });
    expect(c!.error).toMatch(REASON);
    expect(c!.explanation).toMatch(/^The experiment could not be run: cannot create a network namespace/);
    const crashed = r.stderr.split('\n').filter((l) => l.startsWith('twlab: lab: experiment crashed: '));
    expect(crashed).toHaveLength(1);
    expect(crashed[0]).toMatch(/^twlab: lab: experiment crashed: S0-02: cannot create a network namespace/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it.runIf(isRoot)('text: the report still shows the claim as NOT-TESTED with why; exit 1', () => {
    const r = labWithoutNamespaces(['--only', 'S0-02']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toMatch(/^S0-02 {2}NOT-TESTED/m);
    expect(r.stdout).toMatch(/why {9}The experiment could not be run: cannot create a network/);
    expect(r.stdout).toMatch(/Verdicts: not-tested 1\./);
    expect(r.stderr).toMatch(/^twlab: lab: experiment crashed: S0-02: /m);
  });
});
