#!/usr/bin/env python3
"""The kernel side of `npm run validate-model`: a churn client and a multi-port server, run inside
src/sandbox hosts (never on the host). Used instead of `twlab churn` because the grid needs several
destinations round-robin, source addresses, and TIME_WAIT samples taken by the same process that
paces the connections. Bounded: count, duration and a watchdog.

  server: peer.py server '{"ports":[9000,9001],"close":"client-first"}'   prints "ready"
  client: peer.py client '{...}'   prints one JSON line (see main_client)
"""
import errno, json, os, selectors, socket, struct, sys, time

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
    print('ready', flush=True)
    deadline = time.monotonic() + cfg.get('max_s', 600)
    server_first = cfg['close'] == 'server-first'
    while time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1):
            s = key.fileobj
            if key.data == 'listen':
                try:
                    c, _ = s.accept()
                except OSError:
                    continue
                c.setblocking(False)
                sel.register(c, selectors.EVENT_READ, 'conn')
                continue
            try:
                data = s.recv(4096)
            except OSError:
                data = b''
            # server-first: close as soon as the request arrived (the server sends the first FIN);
            # otherwise read to EOF (or RST) and close after the client did.
            if not data or server_first:
                sel.unregister(s)
                s.close()


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
    pairs = len(sources) * len(dests)
    samples = []
    times = []
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
        times.append(round((time.monotonic() - t0) * 1000, 2))
        s = socket.socket()
        try:
            if local_range:
                lo, hi = local_range
                s.setsockopt(socket.IPPROTO_IP, IP_LOCAL_PORT_RANGE, struct.pack('I', (hi << 16) | lo))
            if mode == 'bind-no-port':
                s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            if mode != 'connect' or src is not None:
                s.bind((src or '0.0.0.0', 0))
            s.connect((addr, port))
            s.sendall(b'foo')
            if close == 'server-first':
                while s.recv(4096):
                    pass
            elif close == 'rst':
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger0)
            s.close()
            succeeded += 1
        except OSError as e:
            s.close()
            if first is None:
                first = {'at': attempted, 'sec': round(time.monotonic() - t0, 4), 'errno': errno.errorcode.get(e.errno, str(e.errno)),
                         'states': socket_states()}
            if cfg.get('stop_on_error', True):
                break
    elapsed = time.monotonic() - t0
    time.sleep(cfg.get('settle', 0.3))
    print(json.dumps({'attempted': attempted, 'succeeded': succeeded, 'first': first, 'elapsed': round(elapsed, 4),
                      'twEnd': sockstat_tw(), 'samples': samples, 'times': times}), flush=True)


if __name__ == '__main__':
    cfg = json.loads(sys.argv[2])
    (main_server if sys.argv[1] == 'server' else main_client)(cfg)
