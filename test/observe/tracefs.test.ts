/**
 * tracefs parsing against this kernel's own format files, and a private instance's life: created,
 * filtered, read, removed. The binary reader itself: tracefs-raw.test.ts.
 */
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readlinkSync,
  rmSync,
  rmdirSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { CLI } from '../helpers/cli.js';
import { distPath } from '../../src/common/paths.js';
import {
  TraceInstance,
  findTracefs,
  parseEventFormat,
  readEventFormat,
  removeStaleInstances,
} from '../../src/observe/tracefs.js';

const FORMAT = '/sys/kernel/tracing/events/sock/inet_sock_set_state/format';
const haveTracefs = existsSync(FORMAT) && process.getuid?.() === 0;

describe('tracefs parsing', () => {
  it.runIf(haveTracefs)("reads inet_sock_set_state's fields, labels and state table from this kernel", () => {
    const f = parseEventFormat(readFileSync(FORMAT, 'utf8'));
    expect(f.name).toBe('inet_sock_set_state');
    expect(f.id).toBeGreaterThan(0);
    expect(f.fields.map((x) => x.name)).toEqual(
      expect.arrayContaining(['oldstate', 'newstate', 'sport', 'dport', 'saddr_v6']),
    );
    expect(f.fields.find((x) => x.name === 'sport')).toMatchObject({ size: 2, signed: false });
    expect(f.labels).toEqual(expect.arrayContaining(['saddrv6', 'daddrv6', 'oldstate', 'newstate']));
    const states = f.symbols.get('newstate')!;
    expect(states.get(7)).toBe('TCP_CLOSE');
    expect(states.get(6)).toBe('TCP_TIME_WAIT');
    expect(f.symbols.get('family')!.get(10)).toBe('AF_INET6');
  });

  it('rejects text that is not a format file', () => {
    expect(() => parseEventFormat('hello')).toThrow(/not a tracefs event format/);
  });
});

describe.runIf(haveTracefs)('tracefs instance', () => {
  it('removes the instances nobody holds open (old names too), never a held or foreign one', async () => {
    const root = await findTracefs();
    const dir = (name: string): string => `${root}/instances/${name}`;
    const stale = 'twlab-99999999-stale1';
    const oldName = 'twlab-4026531836-12345-old1'; // twlab-<pidns>-<pid>-<random>, older versions
    const held = `twlab-${process.pid}-held1`;
    const foreign = 'nottwlab-x1';
    for (const name of [stale, oldName, held, foreign]) mkdirSync(dir(name));
    // A live owner keeps a file of its instance open; the kernel then refuses rmdir (EBUSY).
    const fd = openSync(`${dir(held)}/tracing_on`, 'r');
    try {
      const removed = removeStaleInstances(root, 0); // made a moment ago: no minimum age
      expect(removed).toEqual(expect.arrayContaining([stale, oldName]));
      expect(removed).not.toContain(held);
      expect(existsSync(dir(stale))).toBe(false);
      expect(existsSync(dir(oldName))).toBe(false);
      expect(existsSync(dir(held))).toBe(true);
      expect(existsSync(dir(foreign))).toBe(true);
    } finally {
      closeSync(fd);
      for (const name of [stale, oldName, held, foreign]) if (existsSync(dir(name))) rmdirSync(dir(name));
    }
  });

  it('holds its own instance open, so a concurrent cleanup leaves it alone; no hooks left after', async () => {
    const root = await findTracefs();
    const hooks = (): number[] =>
      ['SIGINT', 'SIGTERM', 'SIGHUP', 'exit'].map((s) => process.listenerCount(s));
    const before = hooks();
    const inst = await TraceInstance.create(root);
    try {
      expect(removeStaleInstances(root)).not.toContain(inst.name);
      expect(existsSync(inst.path)).toBe(true);
      expect(() => rmdirSync(inst.path)).toThrow(/EBUSY/);
      expect(hooks()).toEqual(before.map((n) => n + 1)); // the exit path's listeners
    } finally {
      await inst.remove();
    }
    expect(existsSync(inst.path)).toBe(false);
    expect(hooks()).toEqual(before);
  });

  it('leaves an instance made a moment ago (not yet held by its maker) to its maker', async () => {
    const root = await findTracefs();
    const name = `twlab-${process.pid}-fresh1`;
    mkdirSync(`${root}/instances/${name}`);
    try {
      expect(removeStaleInstances(root)).not.toContain(name);
      expect(existsSync(`${root}/instances/${name}`)).toBe(true);
    } finally {
      rmdirSync(`${root}/instances/${name}`);
    }
  });

  it('is created even while another process sweeps stale instances without pause', async () => {
    // What several twlab runs starting at once do to each other: each sweep removes any instance
    // not yet held, including one another run made a moment ago and has not opened yet.
    const root = await findTracefs();
    const sweeper = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const { removeStaleInstances } = await import(${JSON.stringify(distPath('observe/tracefs.js'))});
         const end = Date.now() + 8000;
         console.log('sweeping');
         while (Date.now() < end) removeStaleInstances(${JSON.stringify(root)});`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      const started = await new Promise((resolve) => {
        sweeper.stdout.once('data', () => resolve(true));
        sweeper.once('exit', () => resolve(false));
      });
      expect(started).toBe(true);
      for (let i = 0; i < 40; i++) {
        const inst = await TraceInstance.create(root);
        expect(existsSync(inst.path)).toBe(true);
        await inst.remove();
      }
    } finally {
      sweeper.kill('SIGKILL');
    }
  });

  it('is private, takes filters, refuses a bad one with the reason, and is removed', async () => {
    const root = await findTracefs();
    const inst = await TraceInstance.create(root);
    expect(existsSync(inst.path)).toBe(true);
    expect(inst.name).toMatch(new RegExp(`^twlab-${readlinkSync('/proc/self')}-[0-9a-z]+$`));
    await expect(inst.enableEvent('sock', 'inet_sock_set_state', 'nosuchfield == 1')).rejects.toThrow(
      /filter 'nosuchfield == 1'.*refused/,
    );
    await inst.enableEvent('sock', 'inet_sock_set_state', 'sport == 1 || dport == 1');
    expect(readFileSync(`${inst.path}/events/sock/inet_sock_set_state/enable`, 'utf8').trim()).toBe('1');
    // The global (top-level) enable is untouched: our instance is our own.
    expect(readFileSync(`${root}/events/sock/inet_sock_set_state/filter`, 'utf8')).not.toMatch(/sport == 1/);
    await expect(inst.enableEvent('nosuch', 'event')).rejects.toThrow(/no nosuch:event event/);
    const state = await readEventFormat(root, 'sock', 'inet_sock_set_state');
    const reading = inst.readRaw({ state }, () => undefined);
    await reading.ready;
    inst.stop();
    expect(await reading.done).toEqual({ missed: 0, pages: 0 });
    await inst.remove();
    expect(existsSync(inst.path)).toBe(false);
    await inst.remove(); // idempotent
  });
});

describe.runIf(haveTracefs)('a tracefs that twlab mounted itself', () => {
  it('is unmounted again when the trace ends, normally or by SIGINT', () => {
    // In a private mount namespace of this test's own, where tracefs is unmounted first: the
    // host's mount is never touched. $0 node, $1 the CLI, $2 a file for the tracer's stderr.
    const count = '$(grep -c " tracefs " /proc/self/mounts)';
    const script = [
      'umount /sys/kernel/tracing',
      `echo "before ${count}"`,
      '"$0" "$1" trace --duration 0.3 --port 9 >/dev/null 2>>"$2"',
      `echo "normal $? ${count}"`,
      '"$0" "$1" trace --duration 30 --port 9 >/dev/null 2>>"$2" & p=$!',
      'i=0; while [ "$(grep -c "tracefs instance" "$2")" -lt 2 ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done',
      `echo "tracing ${count}"`,
      'kill -INT $p; wait $p',
      `echo "interrupted $? ${count}"`,
    ].join('\n');
    const dir = mkdtempSync(join(tmpdir(), 'twlab-mount-'));
    try {
      const err = join(dir, 'stderr');
      const r = spawnSync('unshare', ['--mount', '--', 'sh', '-c', script, process.execPath, CLI, err], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(r.stdout.trim().split('\n'), r.stderr + readFileSync(err, 'utf8')).toEqual([
        'before 0',
        'normal 0 0',
        'tracing 1',
        'interrupted 130 0',
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
