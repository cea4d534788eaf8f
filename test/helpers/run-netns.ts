/**
 * A network namespace kept by a bind mount under /run/netns, as `ip netns add` leaves one: for the
 * tests that need a namespace no process holds. Test files run side by side, and a fresh machine
 * has no /run/netns yet: whichever file makes it, the other may be using it, so it is made with
 * `recursive` (no EEXIST race), a file vanishing with it is made again, and it is removed only by
 * a process that found it missing and only when empty (another file's mount keeps it).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, rmdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const RUN_NETNS = '/run/netns';
/** Whether /run/netns was there before this process first used it (then it is never removed). */
const hadRunNetns = existsSync(RUN_NETNS);

/** Bind-mount /proc/PID/ns/net at a new /run/netns/twlab-test-XXXXXXXX; returns that path. */
export function bindNetns(pid: number): string {
  const path = join(RUN_NETNS, `twlab-test-${randomBytes(4).toString('hex')}`);
  for (let attempt = 1; ; attempt++) {
    mkdirSync(RUN_NETNS, { recursive: true });
    try {
      closeSync(openSync(path, 'wx'));
      break;
    } catch (err) {
      // Another test file removed /run/netns between our mkdir and open: make it again.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 5) throw err;
    }
  }
  execFileSync('mount', ['--bind', `/proc/${pid}/ns/net`, path], { stdio: ['ignore', 'ignore', 'pipe'] });
  return path;
}

/** Undo bindNetns (idempotent): unmount, remove the file, and /run/netns if we made it and it is empty. */
export function unbindNetns(path: string): void {
  if (existsSync(path)) spawnSync('umount', [path], { stdio: 'ignore', timeout: 10_000 });
  rmSync(path, { force: true });
  if (hadRunNetns) return;
  try {
    rmdirSync(RUN_NETNS);
  } catch (err) {
    // Another test file's mount is there (ENOTEMPTY), or it removed the directory already.
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'ENOENT' && code !== 'EBUSY') throw err;
  }
}
