"""The seed's client (blog post 000), in Python 3, bounded by a count and timed.

Concurrency 1 is the seed's loop as written; above 1, the same steps on nonblocking sockets
with selectors (the seed has no concurrent form). Prints one JSON line.

    python3 seed_client.py ADDR PORT COUNT CONCURRENCY
"""
import errno
import json
import selectors
import socket
import sys
import time

addr, port, count, conc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
target = (addr, port)
succeeded = failed = attempted = 0
first_errno = None
start = time.perf_counter()
cpu_start = time.thread_time()

if conc <= 1:
    try:
        while attempted < count:
            attempted += 1
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.connect(target)
            sock.send(b"foo")
            sock.shutdown(socket.SHUT_RDWR)
            sock.close()
            succeeded += 1
    except OSError as e:
        failed += 1
        first_errno = e.errno
else:
    sel = selectors.DefaultSelector()
    inflight = 0
    while (attempted < count and not failed) or inflight:
        while inflight < conc and attempted < count and not failed:
            attempted += 1
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            err = sock.connect_ex(target)
            if err not in (0, errno.EINPROGRESS):
                failed += 1
                first_errno = first_errno or err
                sock.close()
                break
            sel.register(sock, selectors.EVENT_WRITE)
            inflight += 1
        for key, _ in sel.select(1.0):
            sock = key.fileobj
            sel.unregister(sock)
            inflight -= 1
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                failed += 1
                first_errno = first_errno or err
                sock.close()
                continue
            sock.send(b"foo")
            sock.shutdown(socket.SHUT_RDWR)
            sock.close()
            succeeded += 1

elapsed = time.perf_counter() - start
print(json.dumps({
    "attempted": attempted, "succeeded": succeeded, "failed": failed, "firstErrno": first_errno,
    "durationMs": round(elapsed * 1000, 1), "connectionsPerSecond": round(succeeded / elapsed),
    "cpuMs": round((time.thread_time() - cpu_start) * 1000, 1),
}))
