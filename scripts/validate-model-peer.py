#!/usr/bin/env python3
"""The kernel side of `npm run validate-model`: a churn client and a multi-port server, run inside
src/sandbox hosts (never on the host). Used instead of `twlab churn` because the grid needs several
destinations round-robin, source addresses, and TIME_WAIT samples taken by the same process that
paces the connections. Bounded: count, duration and a watchdog.

  server: peer.py server '{"ports":[9000,9001],"close":"client-first"}'   prints "ready"; on SIGTERM
          prints one JSON line: {"closes": [[peer address, peer port, local port, close time], ...]}
          (CLOCK_MONOTONIC seconds, shared by every network namespace)
  client: peer.py client '{...}'   prints one JSON line (see main_client)

The server's close times give each connection's peer close latency: how long after the client's
close() the peer's FIN (carrying the delayed ACK of the client's FIN) left for the client. Until
it arrives the client's socket is a FIN_WAIT1 orphan that still holds its port.
"""
import collections, errno, json, os, selectors, signal, socket, struct, sys, time

IP_BIND_ADDRESS_NO_PORT = 24
IP_LOCAL_PORT_RANGE = 51


def sockstat_tw():
    with open('/proc/net/sockstat') as f:
        for line in f:
            if line.startswith('TCP:'):
                parts = line.split()
                return int(parts[parts.index('tw') + 1])
    return -1


def socket_states():
    """Count of this namespace's TCP sockets per state (from /proc/net/tcp), to explain a failure."""
    names = {'01': 'ESTABLISHED', '02': 'SYN_SENT', '03': 'SYN_RECV', '04': 'FIN_WAIT1', '05': 'FIN_WAIT2',
             '06': 'TIME_WAIT', '07': 'CLOSE', '08': 'CLOSE_WAIT', '09': 'LAST_ACK', '0A': 'LISTEN', '0B': 'CLOSING'}
    counts = {}
    with open('/proc/net/tcp') as f:
        next(f)
        for line in f:
            st = names.get(line.split()[3], line.split()[3])
            counts[st] = counts.get(st, 0) + 1
    return counts


def main_server(cfg):
    sel = selectors.DefaultSelector()
    for port in cfg['ports']:
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((cfg.get('bind', '0.0.0.0'), port))
        ls.listen(4096)
        ls.setblocking(False)
        sel.register(ls, selectors.EVENT_READ, 'listen')
    closes = []

    def dump(signum, frame):
        print(json.dumps({'closes': closes}), flush=True)
        os._exit(0)

    signal.signal(signal.SIGTERM, dump)
    print('ready', flush=True)
    deadline = time.monotonic() + cfg.get('max_s', 600)
    server_first = cfg['close'] == 'server-first'
    # close_after_ms: a slow peer, closing its end this long after the client's EOF arrived.
    close_after = cfg.get('close_after_ms', 0) / 1000
    pending = collections.deque()  # (due, socket, key data), in due order

    def close_now(s, data):
        # Stamped before close() (which sends the FIN at once): a preemption is likelier on the
        # way back from the syscall, which would make a later stamp late.
        t_close = time.monotonic()
        s.close()
        if len(closes) < 2_000_000:
            closes.append([data[0], data[1], data[2], t_close])

    while time.monotonic() < deadline:
        while pending and pending[0][0] <= time.monotonic():
            _, s, data = pending.popleft()
            close_now(s, data)
        wait = max(0, min(1, pending[0][0] - time.monotonic())) if pending else 1
        for key, _ in sel.select(timeout=wait):
            s = key.fileobj
            if key.data == 'listen':
                try:
                    c, peer = s.accept()
                    local_port = c.getsockname()[1]
                except OSError:
                    continue
                c.setblocking(False)
                sel.register(c, selectors.EVENT_READ, peer + (local_port,))
                continue
            try:
                data = s.recv(4096)
            except OSError:
                data = b''
            # server-first: close as soon as the request arrived (the server sends the first FIN);
            # otherwise read to EOF (or RST) and close after the client did.
            if not data or server_first:
                sel.unregister(s)
                if close_after and not server_first:
                    pending.append((time.monotonic() + close_after, s, key.data))
                else:
                    close_now(s, key.data)


def main_client(cfg):
    dests = cfg['ports']
    addr = cfg['to']
    sources = cfg.get('sources') or [None]
    mode = cfg.get('mode', 'connect')
    close = cfg.get('close', 'client-first')
    count = cfg.get('count', 10**9)
    rate = cfg.get('rate', 0)
    duration = cfg.get('duration', 30)
    local_range = cfg.get('local_range')
    sample_every = cfg.get('sample_every', 0)
    # timeout: seconds a connect() may take (a SYN dropped or answered wrongly behind a NAT is sent
    # again after 1 s, 3 s, ...); past it the attempt fails with ETIMEDOUT. None: the kernel's own.
    timeout = cfg.get('timeout')
    # Per attempt: ms from the attempt's time to connect()'s return (a stall shows here).
    durs = []
    # hold: keep every connection open (client-first) until the run ends, then close them all.
    hold = cfg.get('hold', False)
    held = []
    pairs = len(sources) * len(dests)
    samples = []
    times = []
    # Per attempt: [local address, local port, server port] of a connection that was made, else None.
    conns = []
    first = None
    succeeded = 0
    attempted = 0
    t0 = time.monotonic()
    next_sample = 0.0
    linger0 = struct.pack('ii', 1, 0)
    for k in range(count):
        due = k / rate if rate else 0
        now = time.monotonic() - t0
        if due >= duration or now >= duration + 5:
            break
        while sample_every and next_sample <= due:
            # Sample at the sample's own time, before the connection due then.
            wait = next_sample - (time.monotonic() - t0)
            if wait > 0:
                time.sleep(wait)
            samples.append([round(next_sample, 3), sockstat_tw()])
            next_sample += sample_every
        if rate:
            wait = due - (time.monotonic() - t0)
            if wait > 0:
                time.sleep(wait)
        pair = k % pairs
        port = dests[pair % len(dests)]
        src = sources[pair // len(dests)]
        attempted += 1
        s = socket.socket()
        if timeout:
            s.settimeout(timeout)
        conns.append(None)
        try:
            if local_range:
                lo, hi = local_range
                s.setsockopt(socket.IPPROTO_IP, IP_LOCAL_PORT_RANGE, struct.pack('I', (hi << 16) | lo))
            if mode == 'bind-no-port':
                s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            # The attempt's time: right before the call that picks the port.
            times.append(round((time.monotonic() - t0) * 1000, 3))
            if mode != 'connect' or src is not None:
                s.bind((src or '0.0.0.0', 0))
            s.connect((addr, port))
            durs.append(round((time.monotonic() - t0) * 1000 - times[-1], 3))
            conns[-1] = list(s.getsockname()) + [port]
            s.sendall(b'foo')
            if close == 'server-first':
                while s.recv(4096):
                    pass
            elif close == 'rst':
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger0)
            if hold:
                held.append(s)
            else:
                s.close()
            succeeded += 1
        except OSError as e:
            if len(times) < attempted:
                times.append(round((time.monotonic() - t0) * 1000, 3))
            if len(durs) < attempted:
                durs.append(round((time.monotonic() - t0) * 1000 - times[-1], 3))
            s.close()
            # socket.timeout (a connect() past `timeout`) carries no errno: it is ETIMEDOUT.
            name = 'ETIMEDOUT' if isinstance(e, socket.timeout) else errno.errorcode.get(e.errno, str(e.errno))
            if first is None:
                first = {'at': attempted, 'sec': round(time.monotonic() - t0, 4), 'errno': name,
                         'states': socket_states()}
            if cfg.get('stop_on_error', True):
                break
    elapsed = time.monotonic() - t0
    for h in held:
        h.close()
    time.sleep(cfg.get('settle', 0.3))
    print(json.dumps({'attempted': attempted, 'succeeded': succeeded, 'first': first, 'elapsed': round(elapsed, 4),
                      'twEnd': sockstat_tw(), 'samples': samples, 'times': times, 'conns': conns, 't0': t0,
                      'durs': durs}),
          flush=True)


if __name__ == '__main__':
    cfg = json.loads(sys.argv[2])
    (main_server if sys.argv[1] == 'server' else main_client)(cfg)
