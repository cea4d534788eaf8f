/** The running kernel's build configuration, read (never changed) from where the kernel leaves it. */
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { gunzipSync } from 'node:zlib';

/** CONFIG_HZ of the running kernel, from /proc/config.gz or /boot/config-<release>, if readable. */
export function hostHz(): number | undefined {
  const tryRead = (read: () => string): number | undefined => {
    try {
      const m = /^CONFIG_HZ=(\d+)$/m.exec(read());
      return m ? Number(m[1]) : undefined;
    } catch {
      return undefined;
    }
  };
  return (
    tryRead(() => gunzipSync(readFileSync('/proc/config.gz')).toString('utf8')) ??
    tryRead(() => readFileSync(`/boot/config-${release()}`, 'utf8'))
  );
}
