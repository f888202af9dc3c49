#!/usr/bin/env python3
"""Sorts `perf script -F comm,ip,sym` stacks into request-path stages; prints CPU us/op.

A sample belongs to the first rule (in order) that matches its thread name or any frame.
"""
import argparse, re, sys
from collections import Counter

# (stage, thread-name regex or None, frame regex or None)
RULES = [
    ("flush/compaction", r"^lsm-(flush|compact)", None),
    ("commit log (WAL append, fsync)", None, r"lsm::wal|sync_through|fdatasync|lsm::log::"),
    ("memtable", None, r"lsm::memtable|crossbeam_skiplist"),
    ("engine reads (tables, cache)", None, r"lsm::sstable|lsm::cache|lsm::version::Version::get|get_cached"),
    ("replica (versions, merge, Merkle)", None, r"store::replica::|store::version::|cluster::executor"),
    ("peer messaging", None, r"cluster::peers|replica_server|replica_client|ReplicaRequest|ReplicaResponse|pipeline"),
    ("coordinator", None, r"store::coordinator"),
    ("session / gRPC framing (node)", None, r"server::session|kv_server|h2::|hyper::|tonic::|prost::"),
    ("client (loadgen process)", "LOADGEN", None),
    ("kernel: TCP over loopback", None, r"tcp_|__tcp|ip_output|ip_finish|net_rx|sock_|__dev_queue_xmit"),
    ("kernel: scheduling and wake-ups (futex, epoll, context switches)", None,
     r"futex|schedule|epoll|try_to_wake_up|finish_task_switch|sched_yield"),
    ("allocator", None, r"malloc|_int_free|cfree|realloc|unlink_chunk"),
]

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--freq", type=float, required=True)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--rate", type=float, required=True)
    ap.add_argument("--loadgen-pid", required=True)
    a = ap.parse_args()
    counts = Counter()
    comm, pid, frames = None, None, []
    def flush():
        if pid is None:
            return
        stage = "other (runtime, unattributed)"
        for name, thread, frame in RULES:
            if thread == "LOADGEN":
                if pid == a.loadgen_pid:
                    stage = name
                    break
                continue
            if thread and re.search(thread, comm):
                stage = name
                break
            if frame and any(re.search(frame, f) for f in frames):
                stage = name
                break
        counts[stage] += 1
    for line in sys.stdin:
        if not line.strip():
            flush()
            comm, pid, frames = None, None, []
            continue
        if not line.startswith("\t"):
            flush()
            head = line.split()
            # "COMM PID" (perf prints the thread name first whatever the field order).
            pid, comm, frames = head[-1] if head else "", " ".join(head[:-1]), []
        else:
            parts = line.strip().split(None, 1)
            frames.append(parts[1] if len(parts) > 1 else parts[0])
    flush()
    ops = a.rate * a.seconds
    total = sum(counts.values())
    print(f"| stage | CPU us/op | share |")
    print(f"|---|---:|---:|")
    for stage, n in counts.most_common():
        us = n / a.freq / ops * 1e6
        print(f"| {stage} | {us:.1f} | {100*n/total:.0f}% |")
    print(f"| **all processes** | **{total / a.freq / ops * 1e6:.1f}** | |")

if __name__ == "__main__":
    main()
