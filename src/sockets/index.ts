/**
 * The sockets layer's public API: typed socket options Node lacks (SO_REUSEADDR off, SO_REUSEPORT,
 * SO_LINGER, IP_BIND_ADDRESS_NO_PORT, IP_LOCAL_PORT_RANGE), sockets made with them and handed to
 * Node, and errno names. Raw syscalls (`sys`) stay internal to twlab.
 */
export * from './options.js';
export * from './socket.js';
export { errnoName, errnoCode, SyscallError } from './errno.js';
export type { SockAddr } from './sockaddr.js';
