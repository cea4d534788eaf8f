/**
 * Namespace inode -> who owns it (container, pod, service) for the live views (trace, top): the
 * namespace discovery (namespaces.ts), run again when an inode it has not seen shows up, at most
 * once per REFRESH_MS, since a walk of /proc costs tens of ms on a busy host.
 */
import { discoverNetns, type NetnsInfo } from './namespaces.js';

const REFRESH_MS = 5_000;

export class NetnsOwners {
  private known = new Map<number, NetnsInfo>();
  private lastWalk = -Infinity;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** The namespace as discovery lists it; undefined when it is gone or not yet found. */
  info(inode: number): NetnsInfo | undefined {
    if (!this.known.has(inode) && this.now() - this.lastWalk >= REFRESH_MS) this.walk();
    return this.known.get(inode);
  }

  /** Every namespace found by the last walk (walking now if none was made). */
  all(): NetnsInfo[] {
    if (this.lastWalk === -Infinity) this.walk();
    return [...this.known.values()];
  }

  private walk(): void {
    this.lastWalk = this.now();
    this.known = new Map(discoverNetns().namespaces.map((ns) => [ns.inode, ns]));
  }
}
