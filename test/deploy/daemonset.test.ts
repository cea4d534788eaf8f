/**
 * deploy/kubernetes/daemonset.yaml, as far as it can be checked without a cluster: its command
 * line is one `twlab` accepts and serves with, and the capabilities it grants are the ones
 * `twlab exporter -A` needs: with exactly those (setpriv drops the rest), a namespace whose
 * processes have more capabilities than the exporter (a sandbox host's root) is read; with
 * CAP_SYS_ADMIN alone it is not even seen (opening /proc/PID/ns/net is a ptrace-read check).
 */
import { readFileSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createSandbox, type Sandbox } from '../../src/sandbox/index.js';
import { netnsInodeOf } from '../../src/sockets/netns.js';
import { describeNs } from '../helpers/sandbox.js';
import { getIn, series, startExporterIn } from '../exporter/exporter-sandbox.js';

const MANIFEST = readFileSync(new URL('../../deploy/kubernetes/daemonset.yaml', import.meta.url), 'utf8');

/** A one-line YAML flow list of plain words or quoted strings, e.g. `add: [SYS_ADMIN, SYS_PTRACE]`. */
function flowList(key: string): string[] {
  const m = new RegExp(`^\\s*${key}: \\[(.*)\\]\\s*$`, 'm').exec(MANIFEST);
  if (!m) throw new Error(`no one-line "${key}: [...]" in the manifest`);
  return m[1]!.split(',').map((w) => w.trim().replace(/^'(.*)'$/, '$1'));
}

describeNs('deploy/kubernetes/daemonset.yaml', () => {
  let mon: Sandbox;
  let target: Sandbox;
  let targetInode: number;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    [mon, target] = await Promise.all([createSandbox({ hosts: 1 }), createSandbox({ hosts: 1 })]);
    targetInode = netnsInodeOf(`/proc/${target.client.pid}/ns/net`);
  }, 60_000);

  afterAll(async () => {
    for (const c of children) c.kill('SIGTERM');
    await Promise.all([mon?.close(), target?.close()]);
  });

  it('asks for hostPID, a read-only root filesystem and read-only mounts', () => {
    expect(MANIFEST).toMatch(/^\s+hostPID: true$/m);
    expect(MANIFEST).toMatch(/^\s+readOnlyRootFilesystem: true$/m);
    expect(flowList('drop')).toEqual(['ALL']);
    const mounts = MANIFEST.split('volumeMounts:')[1]!.split('volumes:')[0]!;
    const names = [...mounts.matchAll(/^\s+- name: (\S+)$/gm)].map((m) => m[1]);
    expect(names.length).toBeGreaterThan(0);
    expect([...mounts.matchAll(/^\s+readOnly: true$/gm)]).toHaveLength(names.length);
  });

  /** The manifest's command line, run in `mon` with only `caps`; its first scrape and its stderr. */
  async function scrapeWith(caps: string[]): Promise<{ body: string; stderr: string }> {
    const args = flowList('args');
    expect(args[0]).toBe('exporter');
    const listen = args.indexOf('--listen');
    expect(listen).toBeGreaterThan(0);
    const bounding = ['-all', ...caps.map((c) => `+${c.toLowerCase()}`)].join(',');
    const exp = await startExporterIn(
      mon.client,
      args[listen + 1]!,
      // Every namespace with its own series: on this shared machine there may be more than 20.
      [
        ...args.slice(1).filter((_, i) => i + 1 !== listen && i + 1 !== listen + 1),
        '--max-namespaces',
        '1000',
      ],
      ['setpriv', `--bounding-set=${bounding}`, '--inh-caps=-all'],
    );
    children.push(exp.child);
    try {
      const r = await getIn(mon.client, exp.url.replace('0.0.0.0', '127.0.0.1'));
      expect(r.status).toBe(200);
      return { body: r.body, stderr: exp.stderr() };
    } finally {
      exp.child.kill('SIGTERM');
      await new Promise((resolve) => exp.child.once('exit', resolve));
    }
  }

  it("serves with the manifest's command line and capabilities, and sees a more privileged namespace", async () => {
    const caps = flowList('add');
    expect(caps).toEqual(['SYS_ADMIN', 'SYS_PTRACE']);
    const { body, stderr } = await scrapeWith(caps);
    expect(stderr).not.toMatch(/CAP_SYS_PTRACE/);
    const inodes = new Set(series(body, 'twlab_netns_port_exhaustion_seconds').map((s) => s.labels['netns']));
    expect(inodes.has(String(targetInode))).toBe(true);
    const denied = series(body, 'twlab_netns_skipped').find((s) => s.labels['reason'] === 'denied');
    expect(denied?.value).toBe(0);
  });

  it('does not see it with CAP_SYS_ADMIN alone', async () => {
    const { body, stderr } = await scrapeWith(['SYS_ADMIN']);
    expect(stderr).toMatch(/could not be opened: without CAP_SYS_PTRACE/);
    const inodes = new Set(series(body, 'twlab_netns_port_exhaustion_seconds').map((s) => s.labels['netns']));
    expect(inodes.has(String(targetInode))).toBe(false);
    // ... and says so: the processes it could not look at.
    expect(series(body, 'twlab_netns_unreadable_processes')[0]!.value).toBeGreaterThan(0);
  });
});
