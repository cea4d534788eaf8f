/**
 * A namespace's owner in a few words, the same in the terminal tables (census -A, doctor -A, top)
 * and the dashboard.
 */
import type { NetnsInfo } from './namespaces.js';

/** "docker web-1 (3f2a1b9c0d1e)", "pod shop/cart-7d9 (besteffort)", "service nginx", "pid 812 nginx +3". */
export function ownerLabel(
  ns: Pick<NetnsInfo, 'owner' | 'processes' | 'processCount'> & { netns?: { host: boolean } },
): string {
  const o = ns.owner;
  if (o) {
    const name = o.name ?? o.id.slice(0, 12);
    if (o.kind === 'pod' && o.pod) {
      const pod = o.pod.name ? `${o.pod.namespace ? `${o.pod.namespace}/` : ''}${o.pod.name}` : o.pod.uid;
      return `pod ${pod} (${o.pod.qos})`;
    }
    const where = o.pod ? ` in pod ${o.pod.name ?? o.pod.uid}` : '';
    const id = o.name ? ` (${o.id.slice(0, 12)})` : '';
    if (o.kind === 'service') return `service ${name}`;
    return `${o.runtime ?? o.kind} ${name}${o.name ? id : ''}${where}`;
  }
  if (ns.netns?.host) return 'host (initial namespace)';
  const first = ns.processes[0];
  if (!first) return '(no process)';
  const more = ns.processCount > 1 ? ` +${ns.processCount - 1}` : '';
  return `pid ${first.pid} ${first.comm}${more}`;
}
