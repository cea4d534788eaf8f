import { describe, expect, it } from 'vitest';
import {
  fieldText,
  parseChoice,
  parseHostPort,
  parseIntInRange,
  parseNumberInRange,
  parsePortRange,
} from '../src/common/parse.js';
import { UsageError } from '../src/common/errors.js';
import { readFileSync } from 'node:fs';
import { ETIMEDOUT, SyscallError, errnoCode, errnoName, failure, failureOf } from '../src/sockets/errno.js';

describe('parse', () => {
  it('accepts HOST:PORT for IPv4, [IPv6] and localhost', () => {
    expect(parseHostPort('127.0.0.1:80', '--to')).toEqual({ host: '127.0.0.1', port: 80, family: 4 });
    expect(parseHostPort('[::1]:8080', '--to')).toEqual({ host: '::1', port: 8080, family: 6 });
    expect(parseHostPort('localhost:1', '--to').host).toBe('127.0.0.1');
  });
  it.each(['127.0.0.1:0', '127.0.0.1:65536', 'example.com:80', '1.2.3:80', '127.0.0.1', ':80', '::1:80'])(
    'rejects %s with a UsageError naming the value',
    (bad) => {
      expect(() => parseHostPort(bad, '--to')).toThrow(UsageError);
      expect(() => parseHostPort(bad, '--to')).toThrow(/--to/);
    },
  );
  it('takes plain decimals only: no hex, no exponent, no Infinity', () => {
    expect(parseNumberInRange(' 2.5 ', '--rate', 0, 10)).toBe(2.5);
    for (const bad of ['0x10', '1e3', 'Infinity', '', '.', '1_000', '0b1'])
      expect(() => parseNumberInRange(bad, '--rate', 0, 1e9)).toThrow(UsageError);
  });
  it('shows a bad value whole, escaped, on one line', () => {
    expect(() => parseIntInRange('1\n2', '--count', 1, 9)).toThrow("--count: '1\\n2' is not a whole number");
    expect(() => parseChoice("a'b", '--close', ['rst'])).toThrow("--close: 'a\\'b' is not accepted");
  });
  it('reads a JSON field as a flag would carry it, refusing arrays and objects', () => {
    expect(fieldText(0.0000001, 'rate')).toBe('0.0000001');
    expect(fieldText('7', 'rate')).toBe('7');
    for (const bad of [[5], { a: 1 }, true, null]) expect(() => fieldText(bad, 'rate')).toThrow(UsageError);
  });
  it('ranges: A <= B within 1-65535', () => {
    expect(parsePortRange('50000-50099', '--port-range')).toEqual({ low: 50000, high: 50099 });
    expect(() => parsePortRange('5-4', 'r')).toThrow(/A > B/);
    expect(() => parsePortRange('0-4', 'r')).toThrow(UsageError);
    expect(() => parsePortRange('1-70000', 'r')).toThrow(UsageError);
  });
  it('integers: whole and in range', () => {
    expect(parseIntInRange('5', '--count', 1, 10)).toBe(5);
    expect(() => parseIntInRange('0', '--count', 1, 10)).toThrow(/out of range/);
    expect(() => parseIntInRange('1.5', '--count', 1, 10)).toThrow(/whole number/);
  });
  it('choices list what is accepted', () => {
    expect(() => parseChoice('x', '--close', ['a', 'b'])).toThrow(/accepted: a, b/);
  });
});

describe('errno', () => {
  it('names come from the platform', () => {
    expect(errnoName(99)).toBe('EADDRNOTAVAIL');
    expect(errnoName(-98)).toBe('EADDRINUSE');
    expect(errnoCode('ECONNRESET')).toBe(104);
    expect(errnoName(4000)).toBe('E4000');
    expect(ETIMEDOUT).toBe(110);
  });

  it('one JSON failure shape, whatever was thrown: errno = name, code = number', () => {
    expect(failure('connect', -99)).toEqual({ errno: 'EADDRNOTAVAIL', code: 99, syscall: 'connect' });
    const thrown = new SyscallError('bind', 98, '127.0.0.1:80');
    expect([thrown.code, thrown.errno]).toEqual(['EADDRINUSE', 98]);
    expect(failureOf(thrown)).toEqual({ errno: 'EADDRINUSE', code: 98, syscall: 'bind' });
    // Node's own error (errno -2, libuv's): the number comes from the name.
    let nodeErr: unknown;
    try {
      readFileSync('/nonexistent/twlab');
    } catch (err) {
      nodeErr = err;
    }
    expect(failureOf(nodeErr)).toEqual({ errno: 'ENOENT', code: 2, syscall: 'open' });
    expect(failureOf(new Error('plain'), 'recv')).toEqual({ errno: 'EUNKNOWN', code: 0, syscall: 'recv' });
  });
});
