import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/common/errors.js';
import { sysctlPath } from '../../src/observe/sysctl.js';
import { normaliseSysctlName, parseSysctlAssignment } from '../../src/sandbox/index.js';

describe('normaliseSysctlName', () => {
  it.each([
    ['tcp_tw_reuse', 'net.ipv4.tcp_tw_reuse'],
    [' tcp_tw_reuse ', 'net.ipv4.tcp_tw_reuse'],
    ['net.ipv4.tcp_tw_reuse', 'net.ipv4.tcp_tw_reuse'],
    ['net/ipv4/ip_local_port_range', 'net.ipv4.ip_local_port_range'],
    ['net.core.somaxconn', 'net.core.somaxconn'],
    ['net.ipv4.conf.all.forwarding', 'net.ipv4.conf.all.forwarding'],
    ['net.ipv4.conf.eth-0.forwarding', 'net.ipv4.conf.eth-0.forwarding'],
  ])('%s -> %s', (input, full) => {
    expect(normaliseSysctlName(input)).toBe(full);
  });

  it.each(['kernel.pid_max', 'vm.swappiness', 'fs.file-max', 'ipv4.tcp_tw_reuse'])(
    'refuses %s: not per network namespace, would change the host',
    (name) => {
      expect(() => normaliseSysctlName(name)).toThrow(/not a per-network-namespace key/);
    },
  );

  it.each(['', 'net..tcp', 'net.ipv4.', '../../kernel/x', 'net.ipv4.a b', 'tcp_tw_reuse=1', 'net.ipv4.*'])(
    'refuses %j as a name',
    (name) => {
      expect(() => normaliseSysctlName(name)).toThrow(UsageError);
    },
  );

  it('maps to the /proc/sys path (the one sysctlPath, observe/sysctl.ts)', () => {
    expect(sysctlPath(normaliseSysctlName('tcp_tw_reuse'))).toBe('/proc/sys/net/ipv4/tcp_tw_reuse');
    expect(sysctlPath('tcp_tw_reuse')).toBe('/proc/sys/net/ipv4/tcp_tw_reuse');
  });
});

describe('parseSysctlAssignment', () => {
  it('splits at the first = and normalises the key', () => {
    expect(parseSysctlAssignment('tcp_tw_reuse=0')).toEqual(['net.ipv4.tcp_tw_reuse', '0']);
    expect(parseSysctlAssignment('ip_local_port_range=1024 2048')).toEqual([
      'net.ipv4.ip_local_port_range',
      '1024 2048',
    ]);
    expect(parseSysctlAssignment('net.ipv4.x=a=b')).toEqual(['net.ipv4.x', 'a=b']);
  });

  it.each(['tcp_tw_reuse', '=1', 'tcp_tw_reuse=', 'tcp_tw_reuse=  '])(
    'refuses %j naming the value',
    (text) => {
      expect(() => parseSysctlAssignment(text)).toThrow(new RegExp(`--sysctl: '${text}' is not KEY=VALUE`));
    },
  );
});
