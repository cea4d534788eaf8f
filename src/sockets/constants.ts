/**
 * Linux socket ABI constants (x86_64 and arm64 agree on all of these), as in the kernel's
 * include/uapi/linux/{socket.h,in.h,tcp.h} and asm-generic/socket.h. Node exposes none of them.
 */
export const AF_INET = 2;
export const AF_INET6 = 10;
export const AF_NETLINK = 16;

export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_RAW = 3;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;

export const SOL_SOCKET = 1;
export const SO_REUSEADDR = 2;
export const SO_ERROR = 4;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
export const SO_LINGER = 13;
export const SO_REUSEPORT = 15;

export const IPPROTO_IP = 0;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_IPV6 = 41;
export const IPPROTO_RAW = 255;

/** Defer port choice from bind(ip, 0) to connect() (Linux 4.2). */
export const IP_BIND_ADDRESS_NO_PORT = 24;
/** Per-socket ephemeral port range, low 16 bits = low port, high 16 = high port (Linux 6.3). */
export const IP_LOCAL_PORT_RANGE = 51;
export const IPV6_V6ONLY = 26;

export const TCP_NODELAY = 1;

export const SHUT_RD = 0;
export const SHUT_WR = 1;
export const SHUT_RDWR = 2;

export const F_GETFL = 3;
export const F_SETFL = 4;
export const O_NONBLOCK = 0o4000;

export const POLLIN = 0x001;
export const POLLOUT = 0x004;
export const POLLERR = 0x008;
export const POLLHUP = 0x010;

export const MSG_DONTWAIT = 0x40;
export const MSG_NOSIGNAL = 0x4000;
