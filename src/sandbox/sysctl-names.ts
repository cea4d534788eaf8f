/**
 * Sysctl names as users type them. Only net.* keys are accepted: they are the ones a network
 * namespace has its own copy of, so writing them inside a sandbox never changes the host. Any
 * other tree (kernel.*, vm.*) is global and refused before anything is written.
 */
import { statSync } from 'node:fs';
import { UsageError } from '../common/errors.js';
import { show } from '../common/parse.js';
import { sysctlPath } from '../observe/sysctl.js';

const SEGMENT = /^[A-Za-z0-9_-]+$/;

/**
 * The full dotted name of a sysctl: "tcp_tw_reuse" -> "net.ipv4.tcp_tw_reuse";
 * "net.ipv4.tcp_tw_reuse" and "net/ipv4/tcp_tw_reuse" stay as they are (dotted).
 * Throws a UsageError for a name outside net.* or with characters a sysctl name cannot have.
 */
export function normaliseSysctlName(name: string): string {
  const trimmed = name.trim();
  const parts = trimmed.split(/[./]/);
  const full = parts.length === 1 ? ['net', 'ipv4', ...parts] : parts;
  if (full.some((p) => !SEGMENT.test(p))) {
    throw new UsageError(
      `sysctl ${show(name)} is not a sysctl name (accepted: net.ipv4.tcp_tw_reuse, or the short tcp_tw_reuse)`,
    );
  }
  if (full[0] !== 'net') {
    throw new UsageError(
      `sysctl ${show(name)} is not a per-network-namespace key (accepted: net.* names, or a short net.ipv4 name)`,
    );
  }
  return full.join('.');
}

/**
 * net.* keys a sandbox host has but cannot set, measured on 6.18: the kernel makes them read-only
 * in every network namespace but the initial one (nf_conntrack_standalone.c sets mode 0444 for
 * them there) because one value serves the whole kernel; nf_conntrack_count is read-only everywhere.
 * A write would fail with EACCES, so they are refused before anything starts.
 */
const INITIAL_NAMESPACE_ONLY: Record<string, string> = {
  'net.netfilter.nf_conntrack_max':
    'the conntrack table limit is global; only the initial network namespace may set it',
  'net.nf_conntrack_max':
    'the conntrack table limit is global; only the initial network namespace may set it',
  'net.netfilter.nf_conntrack_buckets':
    'the conntrack hash size is global; only the initial network namespace may set it',
  'net.netfilter.nf_conntrack_expect_max':
    'the expectation limit is global; only the initial network namespace may set it',
  'net.netfilter.nf_conntrack_count': 'it is the current entry count, read-only',
};

/** NAME_MAX: no /proc/sys entry has a longer name, so a longer part can never be a key. */
const NAME_MAX = 255;

/**
 * normaliseSysctlName for a key to be written in a sandbox host: also refuses what can never be
 * written there: the keys only the initial namespace may set, a part longer than any file name,
 * the tree itself ("net", which the short form would read as net.ipv4.net) and a group of keys
 * (net.ipv4, a directory: EISDIR). /proc/sys here is looked at, never written; every group a
 * namespace has, the initial one has too. A key this kernel lacks (tcp_tw_recycle since 4.12) is
 * let through: the sandbox reports it as not present, so one script runs on several kernels.
 */
export function writableSysctlName(name: string): string {
  if (name.trim() === 'net')
    throw new UsageError(`sysctl 'net' is the tree of network sysctls, not one (name a key in it)`);
  const full = normaliseSysctlName(name);
  const why = INITIAL_NAMESPACE_ONLY[full];
  if (why) throw new UsageError(`sysctl ${full}: not settable in a sandbox host (${why})`);
  if (full.split('.').some((part) => part.length > NAME_MAX)) {
    throw new UsageError(`sysctl ${show(full)}: a part is longer than ${NAME_MAX} characters, no sysctl is`);
  }
  let isDir = false;
  try {
    isDir = statSync(sysctlPath(full)).isDirectory();
  } catch {
    // Not on this kernel: reported by the sandbox when it tries.
  }
  if (isDir) throw new UsageError(`sysctl ${full}: a group of sysctls, not one (name a key in it)`);
  return full;
}

/** The largest value a sysctl write takes (proc_dostring and friends read at most a page). */
const MAX_VALUE = 4095;

/** A value to write: one line, not empty, at most a page; shown whole (escaped) when refused. */
export function sysctlValue(key: string, value: string | number): string {
  const text = String(value).trim();
  if (text === '' || /[\n\r\0]/.test(text) || text.length > MAX_VALUE) {
    throw new UsageError(
      `sysctl ${key}: ${show(String(value))} is not accepted (accepted: one non-empty line of at most ${MAX_VALUE} characters)`,
    );
  }
  return text;
}

/**
 * Parse one "K=V" (the CLI's --sysctl): the key is normalised, the value kept as typed (trimmed).
 */
export function parseSysctlAssignment(text: string): [string, string] {
  const eq = text.indexOf('=');
  if (eq <= 0 || text.slice(eq + 1).trim() === '') {
    throw new UsageError(
      `--sysctl: ${show(text)} is not KEY=VALUE (accepted: tcp_tw_reuse=0, net.ipv4.tcp_fin_timeout=5)`,
    );
  }
  const key = writableSysctlName(text.slice(0, eq));
  return [key, sysctlValue(key, text.slice(eq + 1))];
}
