/**
 * `twlab serve` refuses bad input with one line naming the value and exit 2, before it binds
 * anything (no sandbox needed: nothing is opened).
 */
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

describe('twlab serve: bad input', () => {
  it.each([
    [['--listen', '127.0.0.1:0'], /--listen: 0 is out of range \(accepted: 1 to 65535\)/],
    [['--listen', '127.0.0.1:65536'], /--listen: 65536 is out of range/],
    [['--listen', '127.0.0.1:-1'], /--listen: '127\.0\.0\.1:-1' is not HOST:PORT/],
    [['--listen', 'example.com:80'], /--listen: 'example\.com' is not an IP address/],
    [['--listen', '300.1.1.1:80'], /--listen: '300\.1\.1\.1' is not an IP address/],
    [['--listen', '127.0.0.1'], /--listen: '127\.0\.0\.1' is not HOST:PORT/],
    [
      ['--listen', '127.0.0.1:8080', '--close', 'later'],
      /--close: 'later' is not accepted \(accepted: server-first, client-first, rst\)/,
    ],
    [['--listen', '127.0.0.1:8080', '--linger', 'on'], /--linger: 'on' is not accepted \(accepted: off, 0/],
    [['--listen', '127.0.0.1:8080', '--linger', '-5'], /--linger: '-5' is not accepted/],
    [['--listen', '127.0.0.1:8080', '--linger', '2.5'], /--linger: '2\.5' is not accepted/],
    [
      ['--listen', '127.0.0.1:8080', '--reuseaddr', 'yes'],
      /--reuseaddr: 'yes' is not accepted \(accepted: on, off\)/,
    ],
    [['--listen', '127.0.0.1:8080', '--framing', 'json'], /--framing: 'json' is not accepted/],
    [['--listen', '127.0.0.1:8080', '--max-conns', '0'], /--max-conns: 0 is out of range/],
    [
      ['--listen', '127.0.0.1:8080', '--idle-timeout', 'soon'],
      /--idle-timeout: 'soon' is not a whole number/,
    ],
    [['--listen', '127.0.0.1:8080', '--max-request-bytes', '0'], /--max-request-bytes: 0 is out of range/],
    [['--listen', '127.0.0.1:8080', '--duration', '-1'], /--duration: -1 is out of range/],
    [['--listen', '127.0.0.1:8080', '--exit-after', '0'], /--exit-after: 0 is out of range/],
    [[], /required option '--listen <host:port>' not specified/],
  ])('serve %j: one line, exit 2', async (args, message) => {
    const r = await runCli(['serve', ...args]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^twlab: /);
    expect(lines[0]).toMatch(message);
  });

  it('--help shows examples', async () => {
    const r = await runCli(['serve', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Examples:\n\s+twlab serve --listen/);
  });
});
