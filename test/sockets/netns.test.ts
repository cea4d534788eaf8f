/**
 * withNetns: the calling thread enters another network namespace (a sandbox host's), reads there,
 * and is back in its own afterwards, also when the read throws.
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createSandbox, type Sandbox } from '../../src/sandbox/index.js';
import { currentNetnsInode, netnsInodeOf, withNetns } from '../../src/sockets/netns.js';
import { SyscallError } from '../../src/sockets/errno.js';
import { describeNs } from '../helpers/sandbox.js';

function threadNetns(): string {
  return readlinkSync('/proc/thread-self/ns/net');
}

describeNs('withNetns', () => {
  let box: Sandbox;
  let path: string;
  beforeAll(async () => {
    box = await createSandbox({ hosts: 1, portRange: { low: 41000, high: 41099 } });
    path = `/proc/${box.client.pid}/ns/net`;
  });
  afterAll(async () => {
    await box?.close();
  });

  it('reads inside the namespace and comes back', () => {
    const home = threadNetns();
    const inside = withNetns(path, () => ({
      ns: threadNetns(),
      inode: currentNetnsInode(),
      range: readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim(),
    }));
    expect(inside.ns).toBe(readlinkSync(path));
    expect(inside.ns).not.toBe(home);
    expect(inside.inode).toBe(netnsInodeOf(path));
    // The sandbox's own sysctl, not this namespace's.
    expect(inside.range.split(/\s+/)).toEqual(['41000', '41099']);
    expect(threadNetns()).toBe(home);
  });

  it('comes back when the read throws, and the error reaches the caller', () => {
    const home = threadNetns();
    let seen = '';
    expect(() =>
      withNetns(path, () => {
        seen = threadNetns();
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(seen).toBe(readlinkSync(path));
    expect(threadNetns()).toBe(home);
  });

  it('refuses an asynchronous read, from home', () => {
    const home = threadNetns();
    expect(() => withNetns(path, () => Promise.resolve(1))).toThrow(/synchronous/);
    expect(threadNetns()).toBe(home);
  });

  it('fails before entering when the path is gone or not a network namespace', () => {
    const home = threadNetns();
    expect(() => withNetns('/proc/999999999/ns/net', () => 1)).toThrow(/ENOENT/);
    let err: unknown;
    try {
      withNetns(`/proc/${box.client.pid}/ns/uts`, () => 1);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SyscallError);
    expect((err as SyscallError).code).toBe('EINVAL');
    expect(threadNetns()).toBe(home);
  });
});
