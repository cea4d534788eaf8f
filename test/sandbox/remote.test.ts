/**
 * Typed calls into sandbox hosts (src/sandbox/remote.ts): every declared module path loads from
 * dist/ and exports functions; the compiler rejects a wrong function name or argument (the
 * @ts-expect-error lines fail `tsc -p tsconfig.check.json`, run by `npm run lint`, if they ever
 * compile); a call reaches the host and events come back typed.
 */
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { distPath } from '../../src/common/paths.js';
import * as labRemote from '../../src/lab/probes/remote.js';
import { remote, type RemoteModule } from '../../src/sandbox/remote.js';
import { withSandbox } from '../../src/sandbox/index.js';
import type { SandboxHost } from '../../src/sandbox/types.js';
import * as trafficRemote from '../../src/traffic/remote.js';
import { describeNs } from '../helpers/sandbox.js';

const declared: Array<[string, RemoteModule<unknown>]> = [];
for (const [name, v] of [...Object.entries(labRemote), ...Object.entries(trafficRemote)]) {
  if (typeof v === 'object' && v !== null && 'path' in v) declared.push([name, v as RemoteModule<unknown>]);
}

describe('remote module declarations', () => {
  it('declares the modules the lab and traffic call', () => {
    expect(declared.map(([name]) => name)).toEqual(expect.arrayContaining(['TCP', 'CHURN', 'SERVER_PROBE']));
  });

  it.each(declared)('%s: its path loads from dist/ and exports functions', async (_name, mod) => {
    expect(existsSync(distPath(mod.path))).toBe(true);
    const loaded = (await import(pathToFileURL(distPath(mod.path)).href)) as Record<string, unknown>;
    expect(Object.values(loaded).some((v) => typeof v === 'function')).toBe(true);
  });

  it('a wrong function name or argument does not compile', () => {
    // Never called: only the compiler looks at this function.
    const unused = (host: SandboxHost): unknown[] => [
      // @ts-expect-error: churn.js has no runChurns
      remote(host, trafficRemote.CHURN).runChurns({ to: '127.0.0.1:80' }),
      // @ts-expect-error: count is a number
      remote(host, trafficRemote.CHURN).runChurn({ to: '127.0.0.1:80', count: 'many' }),
      // @ts-expect-error: emit is the agent's, not an argument JSON can carry
      remote(host, trafficRemote.CHURN).runChurn({ to: '127.0.0.1:80' }, () => undefined),
    ];
    expect(typeof unused).toBe('function');
  });
});

describeNs('remote() in a host', () => {
  it('runs the function there, with its typed events', async () => {
    await withSandbox({ hosts: 1 }, async (box) => {
      const events: string[] = [];
      const rows = await remote(box.client, labRemote.TCP_TABLE).tcpTable();
      expect(Array.isArray(rows)).toBe(true);
      const summary = await remote(box.client, trafficRemote.CHURN, (e) => events.push(e.type)).runChurn({
        to: '127.0.0.1:9',
        count: 1,
      });
      expect(summary.firstError).toMatchObject({ errno: 'ECONNREFUSED', syscall: 'connect' });
      expect(events[0]).toBe('start');
    });
  });
});
