#!/usr/bin/env python3
"""Creates K sockets in each of several TCP states inside a sandbox host, for the census tests.

Usage: census-fixture.py JSON  where JSON = {"port": P, "tw": K, "estab": K, "finwait2": K,
"synsent": K, "hold_s": S}. Prints one JSON line "ready" with what
it made, then holds every socket until stdin closes or hold_s passes (bounded).
  LISTEN       1 listener on 127.0.0.1:P
  TIME-WAIT    tw client sockets that closed first (the server closes second)
  ESTAB        estab open pairs (2*estab sockets)
  FIN-WAIT-2 / CLOSE-WAIT  finwait2 pairs: client shutdown(SHUT_WR), server never closes
  SYN-SENT     synsent nonblocking connects to a second listener (127.0.0.1:P+1, backlog 0) whose
               accept queue is full, so the kernel drops their SYNs (tcp_conn_request, "listen
               overflow") and they stay in SYN-SENT, retransmitting
"""
import errno, json, select, socket, sys, time

cfg = json.loads(sys.argv[1])
port = cfg["port"]
keep = []

lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lst.bind(("127.0.0.1", port))
lst.listen(4096)
keep.append(lst)

def pair():
    c = socket.create_connection(("127.0.0.1", port), timeout=5)
    s, _ = lst.accept()
    return c, s

tw_ports = []
for _ in range(cfg.get("tw", 0)):
    c, s = pair()
    tw_ports.append(c.getsockname()[1])
    c.close()                       # client closes first -> FIN-WAIT -> TIME-WAIT
    s.settimeout(5)
    assert s.recv(1) == b""         # server sees EOF, then closes second
    s.close()

for _ in range(cfg.get("estab", 0)):
    keep.extend(pair())

for _ in range(cfg.get("finwait2", 0)):
    c, s = pair()
    c.shutdown(socket.SHUT_WR)      # client: FIN-WAIT-2 (not orphaned: no timer)
    keep.extend([c, s])             # server: CLOSE-WAIT, never closes

if cfg.get("synsent", 0):
    full = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    full.bind(("127.0.0.1", port + 1))
    full.listen(0)                  # never accepted: one connection fills the queue
    keep.append(full)
    keep.append(socket.create_connection(("127.0.0.1", port + 1), timeout=5))
    time.sleep(0.1)
    for _ in range(cfg["synsent"]):
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.setblocking(False)
        e = c.connect_ex(("127.0.0.1", port + 1))
        assert e in (errno.EINPROGRESS, errno.EAGAIN), e
        keep.append(c)

# Let the last FINs/ACKs settle on loopback before saying ready.
time.sleep(0.3)
print(json.dumps({"ready": True, "twPorts": len(tw_ports)}), flush=True)
select.select([sys.stdin], [], [], cfg.get("hold_s", 120))
