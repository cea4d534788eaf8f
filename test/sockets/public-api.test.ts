/**
 * What a Node service gets from `import ... from 'twlab'`: the socket options and sockets Node
 * lacks, and the server, as functions (a missing export would be a broken promise in the README).
 */
import { describe, expect, it } from 'vitest';
import * as twlab from '../../src/index.js';

describe("twlab's public API: sockets and server", () => {
  it.each([
    'applySocketOptions',
    'readSocketOptions',
    'setLinger',
    'getLinger',
    'parseLinger',
    'fdOf',
    'listenTcp',
    'connectTcp',
    'bindUdp',
    'tryBind',
    'openSocket',
    'closeFd',
    'startServer',
    'runServer',
    'requestOnce',
    'errnoName',
  ])('exports %s', (name) => {
    expect(typeof (twlab as Record<string, unknown>)[name]).toBe('function');
  });

  it.each(['runChurn', 'remote', 'createSandbox', 'takeCensus', 'runLab', 'predict'])(
    'exports %s',
    (name) => {
      expect(typeof (twlab as Record<string, unknown>)[name]).toBe('function');
    },
  );

  it.each(['Limiter', 'runTask', 'runTasks', 'createProgress', 'defaultJobs'])(
    'keeps the runner internal %s out of the public API',
    (name) => {
      expect((twlab as Record<string, unknown>)[name]).toBeUndefined();
    },
  );

  it('a listener with SO_REUSEADDR off, as the README promises', async () => {
    const server = twlab.listenTcp({ address: '127.0.0.1', port: 0, reuseAddr: false });
    try {
      expect(twlab.readSocketOptions(twlab.fdOf(server)).reuseAddr).toBe(false);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
