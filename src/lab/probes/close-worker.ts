/**
 * Worker thread for probes/tcp.ts closeOffThread(): performs one close() that may block (SO_LINGER
 * {1,N}) off the agent's main thread, and reports its return value, this thread's errno and how
 * long it blocked.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { sys, lastErrno } from '../../sockets/syscalls.js';

const { fd } = workerData as { fd: number };
const t0 = performance.now();
const ret = sys.close(fd);
const errno = ret < 0 ? lastErrno() : 0;
parentPort?.postMessage({ ret, errno, ms: performance.now() - t0 });
