/**
 * A worker thread that takes the TIME_WAIT histogram dump while the main thread takes the census:
 * the kernel builds each sock_diag chunk inside the reader's recvmsg, so two readers on two
 * threads use two cores, and a scrape costs about the longer pass instead of both.
 */
import { parentPort } from 'node:worker_threads';
import { timeWaitHistogram } from './time-wait-histogram.js';

parentPort?.on('message', (msg: { id: number; source?: 'auto' | 'netlink' | 'procfs' }) => {
  try {
    const counts = timeWaitHistogram(msg.source);
    parentPort!.postMessage({ id: msg.id, counts });
  } catch (err) {
    parentPort!.postMessage({ id: msg.id, error: err instanceof Error ? err.message : String(err) });
  }
});
