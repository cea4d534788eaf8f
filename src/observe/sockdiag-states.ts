/**
 * TCP state numbers (include/net/tcp_states.h) and the names `ss` prints for them, so that
 * twlab's output and ss's can be compared word for word.
 */

/** Kernel state numbers as sock_diag and /proc/net/tcp report them. */
export const TCP_ESTABLISHED = 1;
export const TCP_SYN_SENT = 2;
export const TCP_SYN_RECV = 3;
export const TCP_FIN_WAIT1 = 4;
export const TCP_FIN_WAIT2 = 5;
export const TCP_TIME_WAIT = 6;
export const TCP_CLOSE = 7;
export const TCP_CLOSE_WAIT = 8;
export const TCP_LAST_ACK = 9;
export const TCP_LISTEN = 10;
export const TCP_CLOSING = 11;
export const TCP_NEW_SYN_RECV = 12;
export const TCP_BOUND_INACTIVE = 13;

/** ss's spelling of each state (iproute2 misc/ss.c sstate_name); index = kernel number. */
const SS_NAMES = [
  'UNKNOWN',
  'ESTAB',
  'SYN-SENT',
  'SYN-RECV',
  'FIN-WAIT-1',
  'FIN-WAIT-2',
  'TIME-WAIT',
  'UNCONN',
  'CLOSE-WAIT',
  'LAST-ACK',
  'LISTEN',
  'CLOSING',
  'NEW-SYN-RECV',
  'BOUND-INACTIVE',
] as const;

export type TcpStateName = (typeof SS_NAMES)[number];

/** The ss name of a kernel state number ("TIME-WAIT" for 6); "UNKNOWN" outside the table. */
export function tcpStateName(state: number): TcpStateName {
  return SS_NAMES[state] ?? 'UNKNOWN';
}

/** The kernel's spelling (include/net/tcp_states.h without TCP_, as the seeds write it): "TIME_WAIT". */
export function kernelStateName(state: number): string {
  return KERNEL_NAMES[state] ?? `STATE_${state}`;
}

const KERNEL_NAMES = [
  '',
  'ESTABLISHED',
  'SYN_SENT',
  'SYN_RECV',
  'FIN_WAIT1',
  'FIN_WAIT2',
  'TIME_WAIT',
  'CLOSE',
  'CLOSE_WAIT',
  'LAST_ACK',
  'LISTEN',
  'CLOSING',
  'NEW_SYN_RECV',
  'BOUND_INACTIVE',
] as const;

/** Every name a user may type for a state: ss's output names and ss's filter words. */
const ALIASES: Record<string, number> = {
  established: TCP_ESTABLISHED,
  'syn-sent': TCP_SYN_SENT,
  'syn-recv': TCP_SYN_RECV,
  'fin-wait-1': TCP_FIN_WAIT1,
  'fin-wait-2': TCP_FIN_WAIT2,
  'time-wait': TCP_TIME_WAIT,
  closed: TCP_CLOSE,
  close: TCP_CLOSE,
  'close-wait': TCP_CLOSE_WAIT,
  'last-ack': TCP_LAST_ACK,
  listening: TCP_LISTEN,
  closing: TCP_CLOSING,
};
SS_NAMES.forEach((name, n) => {
  if (n > 0) ALIASES[name.toLowerCase()] = n;
});

/** The accepted spellings, for error messages. */
export const TCP_STATE_WORDS: readonly string[] = Object.keys(ALIASES);

/** Kernel state number for a user's word (case-insensitive; '_' taken as '-'); undefined if none. */
export function tcpStateNumber(word: string): number | undefined {
  return ALIASES[word.trim().toLowerCase().replace(/_/g, '-')];
}

/**
 * The state mask ss -a asks for: states 1..12 (bit 12, NEW_SYN_RECV request sockets, the kernel
 * also adds itself when SYN_RECV is asked). BOUND_INACTIVE (13) sockets are only dumped when
 * asked for by name.
 */
export const ALL_STATES_MASK = (1 << 13) - 2;

/** Bitmask (1 << state) for a list of state numbers; ALL_STATES_MASK when empty/undefined. */
export function stateMask(states?: readonly number[]): number {
  if (!states || states.length === 0) return ALL_STATES_MASK;
  let mask = 0;
  for (const s of states) mask |= 1 << s;
  return mask >>> 0;
}
