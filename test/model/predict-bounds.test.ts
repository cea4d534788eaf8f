/**
 * `twlab predict` bounds its own work: at the largest values the CLI accepts it answers within the
 * CPU time and memory its --help states, and says where it had to model coarsely. Each run is
 * measured by the kernel (getrusage of the child: CPU seconds and peak RSS), so a loaded machine
 * does not make the test pass or fail.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { CLI } from '../helpers/cli.js';

/** The bound --help states: under a minute of one core and under 500 MB. */
const CPU_SEC = 60;
const RSS_MB = 500;

/** Run the CLI under python3, which reports the child's rusage on its last stderr line. */
function measured(args: string[]): { code: number; stdout: string; cpuSec: number; rssMb: number } {
  const py = `
import json, resource, subprocess, sys
p = subprocess.run(sys.argv[1:], capture_output=True, timeout=${CPU_SEC * 10})
u = resource.getrusage(resource.RUSAGE_CHILDREN)
sys.stdout.write(p.stdout.decode())
sys.stderr.write(p.stderr.decode() + json.dumps({"code": p.returncode, "cpu": u.ru_utime + u.ru_stime, "rss": u.ru_maxrss}) + "\\n")
`;
  const r = spawnSync('python3', ['-c', py, process.execPath, CLI, 'predict', ...args, '--json'], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  const lines = r.stderr.trim().split('\n');
  const m = JSON.parse(lines[lines.length - 1]!) as { code: number; cpu: number; rss: number };
  return { code: m.code, stdout: r.stdout, cpuSec: m.cpu, rssMb: m.rss / 1024 };
}

const MAX = ['--rate', '10000000', '--duration', '31536000'];

describe('twlab predict at the largest accepted values', () => {
  it.each([
    // The two workloads of the report that ran for minutes and grew past 1 GB.
    [MAX, 'coarse'],
    [['--rate', '1000000', '--duration', '3600', '--destinations', '10000'], 'coarse'],
    // Every pool the CLI accepts, plain connect() and bind(0) before connect().
    [[...MAX, '--destinations', '32767', '--close', 'rst'], 'coarse'],
    [[...MAX, '--source-addresses', '32767', '--bind-before-connect'], 'coarse'],
    // Ports that never run out: every attempt succeeds, so none can be skipped; and none at all.
    [
      [...MAX, '--port-range', '1-65535', '--tw-reuse', '1', '--tw-reuse-delay', '1', '--hold', '0.001'],
      'coarse',
    ],
    [
      [...MAX, '--close', 'server-first', '--max-tw-buckets', '2147483647', '--reserved-ports', '1-65535'],
      'exact',
    ],
    // The longest spans: a day's hold, an hour's peer close, a 24-day reuse delay; an odd range.
    [
      [
        ...MAX,
        ...['--port-range', '1024-65534', '--tw-reuse', '1', '--tw-reuse-delay', '2147483647'],
        ...['--hold', '86400', '--peer-close', '3600000', '--max-tw-buckets', '2147483647', '--hz', '1000'],
      ],
      'coarse',
    ],
    // Behind a NAT: every destination its own NAT pool of the largest size; one NAT port held a
    // day by each connection, every dropped SYN retried for the kernel's 127 s.
    [[...MAX, '--nat-ports', '65535', '--destinations', '32767', '--close', 'server-first'], 'coarse'],
    [[...MAX, '--nat-ports', '1', '--hold', '86400'], 'coarse'],
  ])('%j answers within the bound (%s)', { timeout: CPU_SEC * 10 * 1000 }, (args, kind) => {
    const r = measured(args);
    expect(r.code).toBe(0);
    expect(r.cpuSec).toBeLessThan(CPU_SEC);
    expect(r.rssMb).toBeLessThan(RSS_MB);
    console.log(`predict ${args.join(' ')}: ${r.cpuSec.toFixed(1)} s CPU, ${r.rssMb.toFixed(0)} MB`);
    // 'exact': the workload's own figures needed no coarse run (its fixes may have).
    const doc = JSON.parse(r.stdout) as { coarse: unknown };
    expect(doc.coarse === null ? 'exact' : 'coarse').toBe(kind);
  });
});
