/**
 * The URL a `twlab ui --json` or `twlab exporter --json` prints when it serves: one helper for the
 * tests that start either, in the test's own namespace or in a sandbox host.
 */
import type { ChildProcess } from 'node:child_process';

/**
 * Resolve with the `"url": "..."` of the child's --json document (pretty, over several lines:
 * read until the field is whole); reject, with what it said on stderr, if it exits first or
 * prints none within `timeoutMs`.
 */
export function waitForUrl(child: ChildProcess, what: string, timeoutMs = 30_000): Promise<string> {
  let out = '';
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${what} did not start in ${timeoutMs} ms: ${err}`)),
      timeoutMs,
    );
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /"url": "([^"]+)"/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited ${code ?? signal}: ${err}`));
    });
  });
}
