#!/usr/bin/env python3
"""Run inside the sandbox host: time each command (wall, from fork to exit, so Node start-up
counts; and CPU, user+sys, which a loaded machine disturbs less) and its peak RSS (wait4's ru_maxrss, that process alone), ROUNDS times, interleaved.

Usage: timeit.py ROUNDS JSON   JSON = {"name": argv list, ...}. Prints one JSON document:
{"name": {"ms": [...], "cpuMs": [...], "maxRssKB": [...], "out": "<last stdout, first 200 bytes>"}}.
"""
import json, os, subprocess, sys, time

rounds = int(sys.argv[1])
cmds = json.loads(sys.argv[2])
res = {k: {"ms": [], "cpuMs": [], "maxRssKB": [], "out": ""} for k in cmds}
for _ in range(rounds):
    for name, argv in cmds.items():
        t = time.perf_counter()
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        out = p.stdout.read()
        _, status, ru = os.wait4(p.pid, 0)
        ms = (time.perf_counter() - t) * 1000
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            sys.exit(f"{name} exited {p.returncode}")
        res[name]["ms"].append(round(ms, 1))
        res[name]["cpuMs"].append(round((ru.ru_utime + ru.ru_stime) * 1000, 1))
        res[name]["maxRssKB"].append(ru.ru_maxrss)
        res[name]["out"] = out[:200].decode("latin1")
print(json.dumps(res))
