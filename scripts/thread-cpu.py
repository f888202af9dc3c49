#!/usr/bin/env python3
"""CPU time and context switches per operation, per thread kind, of a running loadgen and its
local nodes. Start a fixed-rate run, then this beside it:

    loadgen run workloads/capacity.yaml --rate 5000 --duration 20s &
    scripts/thread-cpu.py --rate 5000 --delay 14 --window 10

It reads /proc/PID/task/TID/{stat,status} of every process whose executable is the loadgen
(nodes are the `__node` ones) at the start and end of the window, and divides by rate x
window. Thread kinds are thread names with trailing digits dropped (`ringkv-replica-`,
`tokio-rt-worker`, ...). Tokio's blocking-pool threads share the workers' name.
"""
import argparse
import collections
import os
import re
import sys
import time


def snapshot(exe_part):
    out = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if exe_part not in os.path.basename(exe):
            continue
        role = "node" if b"__node" in cmd else "loadgen"
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                status = open(f"/proc/{pid}/task/{tid}/status").read()
                stat = open(f"/proc/{pid}/task/{tid}/stat").read()
            except OSError:
                continue
            name = re.search(r"^Name:\s*(.*)$", status, re.M).group(1)
            vol = int(re.search(r"^voluntary_ctxt_switches:\s*(\d+)", status, re.M).group(1))
            invol = int(re.search(r"^nonvoluntary_ctxt_switches:\s*(\d+)", status, re.M).group(1))
            fields = stat.rsplit(")", 1)[1].split()
            ticks = int(fields[11]) + int(fields[12])
            out[(role, pid, tid)] = (name, vol, invol, ticks)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rate", type=float, required=True, help="the run's fixed rate, ops/s")
    p.add_argument("--delay", type=float, default=0, help="seconds to wait before the window")
    p.add_argument("--window", type=float, default=10, help="seconds to measure")
    p.add_argument("--exe", default="loadgen", help="part of the executable's file name")
    a = p.parse_args()
    if a.rate <= 0 or a.window <= 0:
        p.error("--rate and --window must be positive")
    time.sleep(a.delay)
    before = snapshot(a.exe)
    if not before:
        sys.exit(f"no running process whose executable name contains {a.exe!r}")
    time.sleep(a.window)
    after = snapshot(a.exe)
    kinds = collections.defaultdict(lambda: [0, 0, 0, 0])
    for key, (name, vol, invol, ticks) in after.items():
        if key not in before:
            continue
        _, vol0, invol0, ticks0 = before[key]
        k = kinds[(key[0], re.sub(r"\d+$", "", name))]
        k[0] += vol - vol0
        k[1] += invol - invol0
        k[2] += ticks - ticks0
        k[3] += 1
    ops = a.rate * a.window
    us_per_tick = 1e6 / os.sysconf("SC_CLK_TCK")
    print(f"{'process':8} {'threads':24} {'n':>3} {'vol ctx/op':>10} {'invol/op':>8} {'CPU us/op':>9}")
    total = [0, 0, 0]
    for (role, name), (vol, invol, ticks, n) in sorted(kinds.items(), key=lambda kv: -kv[1][2]):
        if vol == 0 and ticks == 0:
            continue
        print(f"{role:8} {name:24} {n:3} {vol / ops:10.2f} {invol / ops:8.2f} {ticks * us_per_tick / ops:9.1f}")
        total = [total[0] + vol, total[1] + invol, total[2] + ticks]
    print(f"{'all':37} {total[0] / ops:10.2f} {total[1] / ops:8.2f} {total[2] * us_per_tick / ops:9.1f}")


if __name__ == "__main__":
    main()
