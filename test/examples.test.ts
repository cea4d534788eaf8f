/**
 * The README's library example runs as written (examples/seed-client.mjs), in a real sandbox.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { describeNs } from './helpers/sandbox.js';

const example = fileURLToPath(new URL('../examples/seed-client.mjs', import.meta.url));

describeNs('examples', () => {
  it('seed-client.mjs reproduces errno 99 at iteration 101 with 100 ports', () => {
    const run = spawnSync(process.execPath, [example], { encoding: 'utf8', timeout: 55_000 });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/errno: 'EADDRNOTAVAIL'/);
    expect(run.stdout).toMatch(/atIteration: 101/);
    expect(run.stdout).toMatch(/100 local ports used/);
  });
});
