#!/usr/bin/env python3
"""bind(0.0.0.0:P) with SO_REUSEADDR on (1) or off (0); prints "bound" or the errno name."""
import errno, socket, sys

s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
if sys.argv[2] == "1":
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("0.0.0.0", int(sys.argv[1])))
    print("bound")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
finally:
    s.close()
