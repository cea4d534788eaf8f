/**
 * Where twlab's own files are, whether the caller runs from dist/ (the CLI) or from src/ (vitest).
 * Code that runs in another process (the sandbox agent, worker threads, the CLI inside a sandbox)
 * always runs the compiled JavaScript in dist/.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    dir = dirname(dir);
  }
  throw new Error(
    'twlab: cannot find the package root (package.json) above ' + fileURLToPath(import.meta.url),
  );
}

/** The package root (the folder with package.json). */
export const PACKAGE_ROOT = findRoot();

/** A compiled file, e.g. distPath('sandbox/agent.js'). */
export function distPath(relative: string): string {
  return join(PACKAGE_ROOT, 'dist', relative);
}

/** argv that runs the twlab CLI with the same Node binary: [node, dist/cli/main.js, ...args]. */
export function twlabArgv(...args: string[]): string[] {
  return [process.execPath, distPath('cli/main.js'), ...args];
}
