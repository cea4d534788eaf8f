/**
 * Netlink sockets for the observe layer (sock_diag and ctnetlink dumps). Built on the raw calls in
 * syscalls.ts; only this file adds what netlink needs. Every receive is nonblocking
 * (MSG_DONTWAIT): the kernel generates a dump's next chunk inside the previous recvmsg() and
 * inside the request's sendmsg(), so data is always queued until NLMSG_DONE and the main thread
 * never waits in the kernel.
 */
import {
  AF_NETLINK,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  MSG_DONTWAIT,
  POLLIN,
  SOL_SOCKET,
  SO_RCVBUF,
} from './constants.js';
import { EAGAIN, EINTR, SyscallError } from './errno.js';
import { sys, lastErrno } from './syscalls.js';

export const NETLINK_SOCK_DIAG = 4;
export const NETLINK_NETFILTER = 12;

/** nlmsghdr flags and types (include/uapi/linux/netlink.h). */
export const NLM_F_REQUEST = 0x1;
export const NLM_F_ROOT = 0x100;
export const NLM_F_MATCH = 0x200;
export const NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH;
export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLMSG_HDRLEN = 16;

const MSG_TRUNC = 0x20;
/** include/uapi/asm-generic/socket.h */
const SO_RCVBUFFORCE = 33;

/** One open netlink socket; close() it when done (dumps are short-lived). */
export class NetlinkSocket {
  readonly fd: number;
  private closed = false;
  private seq = 0;

  private constructor(fd: number) {
    this.fd = fd;
  }

  /** socket(AF_NETLINK, SOCK_DGRAM|SOCK_CLOEXEC, protocol); throws SyscallError (EPERM, ...). */
  static open(protocol: number): NetlinkSocket {
    const fd = sys.socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, protocol);
    if (fd < 0) throw new SyscallError('socket', lastErrno(), `AF_NETLINK protocol ${protocol}`);
    return new NetlinkSocket(fd);
  }

  /** Send one complete netlink message (the kernel autobinds the socket on first send). */
  send(message: Buffer): void {
    for (let attempt = 0; attempt < 100; attempt++) {
      const n = sys.send(this.fd, message, message.length, 0);
      if (n === message.length) return;
      const errno = n < 0 ? lastErrno() : 0;
      if (errno !== EINTR) throw new SyscallError('send', errno || 5, 'netlink request');
    }
    throw new SyscallError('send', EINTR, 'netlink request');
  }

  /**
   * Receive one datagram into `buf` (reused by the caller) without blocking; returns its length.
   * A datagram larger than `buf` is an error rather than silent truncation. When nothing is
   * queued (which a running dump should never show), polls with zero timeout a bounded number
   * of times, then throws EAGAIN.
   */
  recv(buf: Buffer): number {
    for (let attempt = 0; attempt < 1000; attempt++) {
      const n = sys.recv(this.fd, buf, buf.length, MSG_DONTWAIT | MSG_TRUNC);
      if (n > buf.length)
        throw new Error(`netlink datagram of ${n} bytes exceeds the ${buf.length}-byte buffer`);
      if (n >= 0) return n;
      const errno = lastErrno();
      if (errno === EINTR) continue;
      if (errno !== EAGAIN) throw new SyscallError('recv', errno, 'netlink');
      const pfd = Buffer.alloc(8);
      pfd.writeInt32LE(this.fd, 0);
      pfd.writeInt16LE(POLLIN, 4);
      sys.poll(pfd, 1, 0);
    }
    throw new SyscallError('recv', EAGAIN, 'netlink (no reply from the kernel)');
  }

  /**
   * Send a dump request (nlmsghdr `type`, NLM_F_REQUEST|NLM_F_DUMP, then `payload`) and hand
   * every reply message of that dump to `visit` (its type, the offset of its payload in `buf` and
   * the payload's length; valid during the call) until NLMSG_DONE. A NLMSG_ERROR reply throws a
   * SyscallError naming `what`. Synchronous: the kernel builds each chunk inside recv.
   */
  dump(
    type: number,
    payload: Buffer,
    what: string,
    visit: (type: number, buf: Buffer, offset: number, length: number) => void,
  ): void {
    const msg = Buffer.alloc(NLMSG_HDRLEN + payload.length);
    msg.writeUInt32LE(msg.length, 0);
    msg.writeUInt16LE(type, 4);
    msg.writeUInt16LE(NLM_F_REQUEST | NLM_F_DUMP, 6);
    msg.writeUInt32LE(++this.seq, 8);
    payload.copy(msg, NLMSG_HDRLEN);
    this.send(msg);
    const buf = Buffer.allocUnsafe(128 * 1024);
    for (let datagrams = 0; ; datagrams++) {
      // Bounded: a million datagrams is far beyond any table (each holds dozens of records).
      if (datagrams > 1_000_000) throw new Error(`netlink dump (${what}) did not end`);
      const n = this.recv(buf);
      for (let off = 0; off + NLMSG_HDRLEN <= n;) {
        const len = buf.readUInt32LE(off);
        const t = buf.readUInt16LE(off + 4);
        if (len < NLMSG_HDRLEN || off + len > n) throw new Error(`malformed netlink message (len ${len})`);
        if (t === NLMSG_DONE) return;
        if (t === NLMSG_ERROR) {
          const errno = -buf.readInt32LE(off + NLMSG_HDRLEN);
          if (errno !== 0) throw new SyscallError('netlink', errno, what);
        } else if (t !== NLMSG_NOOP) {
          visit(t, buf, off + NLMSG_HDRLEN, len - NLMSG_HDRLEN);
        }
        off += (len + 3) & ~3;
      }
    }
  }

  /**
   * Join multicast groups (a bitmask: group g is bit g-1, e.g. ctnetlink's NFNLGRP_CONNTRACK_NEW
   * = 1): bind(sockaddr_nl { nl_pid 0, nl_groups }). Throws SyscallError (EPERM without
   * CAP_NET_ADMIN in the namespace's user namespace).
   */
  subscribe(groups: number): void {
    const sa = Buffer.alloc(12); // struct sockaddr_nl: family, pad, pid, groups
    sa.writeUInt16LE(AF_NETLINK, 0);
    sa.writeUInt32LE(groups >>> 0, 8);
    if (sys.bind(this.fd, sa, sa.length) < 0) throw new SyscallError('bind', lastErrno(), 'netlink groups');
  }

  /**
   * The receive buffer, in bytes as asked (the kernel doubles it): SO_RCVBUFFORCE (root, beyond
   * net.core.rmem_max), else SO_RCVBUF (capped by rmem_max). Returns what the kernel then reports.
   */
  setReceiveBuffer(bytes: number): number {
    const val = Buffer.alloc(4);
    val.writeInt32LE(bytes, 0);
    if (sys.setsockopt(this.fd, SOL_SOCKET, SO_RCVBUFFORCE, val, 4) < 0) {
      sys.setsockopt(this.fd, SOL_SOCKET, SO_RCVBUF, val, 4);
    }
    const out = Buffer.alloc(4);
    return sys.getsockopt(this.fd, SOL_SOCKET, SO_RCVBUF, out, [4]) < 0 ? 0 : out.readInt32LE(0);
  }

  /**
   * One datagram if one is queued, without blocking: its length, or -errno (-EAGAIN: nothing
   * queued; -ENOBUFS: the kernel dropped messages because the receive buffer was full, reported
   * once per overrun). A datagram larger than `buf` is an error.
   */
  receiveNow(buf: Buffer): number {
    for (;;) {
      const n = sys.recv(this.fd, buf, buf.length, MSG_DONTWAIT | MSG_TRUNC);
      if (n > buf.length)
        throw new Error(`netlink datagram of ${n} bytes exceeds the ${buf.length}-byte buffer`);
      if (n >= 0) return n;
      const errno = lastErrno();
      if (errno !== EINTR) return -errno;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    sys.close(this.fd);
  }
}
