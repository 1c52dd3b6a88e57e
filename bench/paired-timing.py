#!/usr/bin/env python3
"""Paired whole-process timing for a loaded, shared machine.

Each round runs every command once, in a fresh random order; a command's wall
time, CPU time (user + system, from wait4(2)) and peak RSS are recorded. The
report gives the median of each, and the median over rounds of the ratio to
the first command of the same round, so that load which changes between
rounds cancels out of the ratios. NODE_EXTRA_CA_CERTS is removed from the
environment (it makes Node read the system CA bundle at every start).

Usage: ROUNDS=20 bench/paired-timing.py "node -e 0" "node bundle/out/cert-agent.cjs status --config c.yaml" ...
Each argument is split on spaces (or given as a JSON array of strings).
"""
import json
import os
import random
import statistics
import subprocess
import sys
import time

rounds = int(os.environ.get('ROUNDS', '20'))
cmds = [json.loads(a) if a.startswith('[') else a.split() for a in sys.argv[1:]]
if not cmds:
    sys.exit(__doc__)
env = {k: v for k, v in os.environ.items() if k != 'NODE_EXTRA_CA_CERTS'}


def run(argv):
    started = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, ru = os.wait4(p.pid, 0)
    return ((time.perf_counter() - started) * 1000, (ru.ru_utime + ru.ru_stime) * 1000, ru.ru_maxrss / 1024,
            os.waitstatus_to_exitcode(status))


for c in cmds:  # warm-up: page cache, and the agent's start-up caches
    run(c)
    run(c)
res = [[] for _ in cmds]
for _ in range(rounds):
    order = list(range(len(cmds)))
    random.shuffle(order)
    for i in order:
        res[i].append(run(cmds[i]))

print(f"{'command':60} {'wall ms':>8} {'cpu ms':>7} {'RSS MiB':>8} {'x first (wall)':>14} {'x first (cpu)':>13} exit")
for i, c in enumerate(cmds):
    med = [statistics.median(x[k] for x in res[i]) for k in range(3)]
    wall = statistics.median(res[i][r][0] / res[0][r][0] for r in range(rounds))
    cpu = statistics.median(res[i][r][1] / max(res[0][r][1], 1) for r in range(rounds))
    codes = sorted({x[3] for x in res[i]})
    print(f"{' '.join(c)[:60]:60} {med[0]:8.1f} {med[1]:7.1f} {med[2]:8.1f} {wall:14.2f} {cpu:13.2f} {codes}")
print(f"rounds {rounds}, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
