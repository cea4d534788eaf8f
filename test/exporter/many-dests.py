#!/usr/bin/env python3
"""Leaves TIME-WAIT sockets towards many destinations inside a sandbox host, for the exporter's
cardinality test.

Usage: many-dests.py JSON  where JSON = {"base": P, "dests": D, "per": K, "hold_s": S}:
D listeners on 127.0.0.1:P..P+D-1, K client connections to each that close first (client
TIME-WAIT), so D destinations hold K ephemeral ports each. Prints one JSON line when done, then
waits until stdin closes or hold_s passes (bounded).
"""
import json, select, socket, sys, time

cfg = json.loads(sys.argv[1])
listeners = []
made = 0
for i in range(cfg["dests"]):
    l = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("127.0.0.1", cfg["base"] + i))
    l.listen(64)
    listeners.append(l)
    for _ in range(cfg["per"]):
        c = socket.create_connection(("127.0.0.1", cfg["base"] + i), timeout=5)
        s, _ = l.accept()
        c.close()                  # client first -> TIME-WAIT on the client side
        s.settimeout(5)
        assert s.recv(1) == b""
        s.close()
        made += 1
print(json.dumps({"made": made}), flush=True)
select.select([sys.stdin], [], [], min(cfg.get("hold_s", 60), 300))
