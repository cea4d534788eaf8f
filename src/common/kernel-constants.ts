/**
 * The kernel's fixed numbers that more than one layer reads (the census, the model), each with where
 * it comes from in the Linux sources (torvalds/linux, v6.x).
 */

/**
 * include/net/tcp.h: `#define TCP_TIMEWAIT_LEN (60*HZ)`. tcp_time_wait() (net/ipv4/tcp_minisocks.c)
 * arms the TIME_WAIT timer with exactly this, whatever tcp_fin_timeout says.
 */
export const TCP_TIMEWAIT_LEN_MS = 60_000;
