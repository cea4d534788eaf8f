#!/usr/bin/env python3
"""Server-first close on port P, then the listener goes away: TIME-WAIT leftovers on P.

Usage: doctor-fixture.py P REUSE N   REUSE=1: the old server set SO_REUSEADDR. N connections.
Prints one JSON line when done; exits (the leftovers stay in the kernel for 60 s).
"""
import json, socket, sys

port, reuse, n = int(sys.argv[1]), sys.argv[2] == "1", int(sys.argv[3])
lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
if reuse:
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lst.bind(("0.0.0.0", port))
lst.listen(64)
for _ in range(n):
    c = socket.create_connection(("127.0.0.1", port), timeout=5)
    s, _ = lst.accept()
    s.close()                   # server closes first -> its side will hold TIME-WAIT
    c.settimeout(5)
    assert c.recv(1) == b""
    c.close()
lst.close()
print(json.dumps({"done": True, "port": port, "reuse": reuse}), flush=True)
