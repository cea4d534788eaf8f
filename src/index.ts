/**
 * twlab's programmatic API: everything the CLI can do, for a Node service or a test.
 * Each layer exports its public surface from its own index; this file gathers them.
 */
export { UsageError, RunError } from './common/errors.js';
export * from './common/parse.js';
export { errnoName, errnoCode, SyscallError } from './sockets/errno.js';
export { twlabArgv } from './common/paths.js';
export * from './sockets/index.js';
export * from './sandbox/index.js';
export * from './observe/index.js';
export * from './traffic/index.js';
export * from './model/index.js';
export * from './lab/index.js';
export * from './exporter/index.js';
export * from './ui/index.js';
