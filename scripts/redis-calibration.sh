#!/usr/bin/env bash
# Calibrate the loadgen against redis-benchmark, the reference figure for Redis: the same work
# (GET-only and SET-only, 50 clients, pipeline 1 and 16, 100 B and 1 KB values, 100,000 uniform
# keys, closed loop) through redis-benchmark and through the loadgen's redis target,
# interleaved, RUNS runs each, against one local redis-server. Writes
# OUT/redis.json {"settings": [{op, clients, pipeline, value_bytes, redis_benchmark_ops_s,
# loadgen_ops_s, redis_benchmark_p50_ms, loadgen_p50_ms, ...}]} (medians over runs, and every
# run), with every raw output kept in OUT/raw/.
#
#   scripts/redis-calibration.sh [OUT]          (default results/calibration)
#   LOADGEN=path RUNS=3 SECS=4 scripts/redis-calibration.sh
#
# Pipelining is matched exactly: 50 closed-loop workers over 50 connections, each sending
# `pipeline:` commands as one wire-level pipeline and waiting for all the answers, as
# redis-benchmark's clients do with -P.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-results/calibration}
LOADGEN=${LOADGEN:-target/release/loadgen}
RUNS=${RUNS:-3}
SECS=${SECS:-4}
KEYS=100000
CLIENTS=50
for tool in redis-server redis-benchmark python3 "$LOADGEN"; do
    command -v "$tool" >/dev/null 2>&1 || [ -x "$tool" ] || {
        echo "error: $tool is missing (redis-server and redis-benchmark: apt-get install redis-server redis-tools; the loadgen: cargo build --release -p loadgen)" >&2
        exit 2
    }
done
mkdir -p "$OUT/raw"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DIR=$(mktemp -d)
redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$DIR" >"$OUT/raw/redis-server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 100); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done

bench_requests() { # op pipeline: about SECS seconds of work at the rates seen here
    if [ "$2" -gt 1 ]; then echo $((400000 * SECS)); else echo $((70000 * SECS)); fi
}

misses() { redis-cli -p "$PORT" info stats | tr -d '\r' | sed -n 's/^keyspace_misses://p'; }
# A GET run must find every key it asks for, with a value of the run's size: a miss answers
# nil, which is cheaper than a value and would flatter the tool that missed.
check_hits() { # tag misses-before
    local missed=$(($(misses) - $2))
    echo "$missed" >"$OUT/raw/misses-$1.txt"
    if [ "$missed" -ne 0 ]; then
        echo "error: $1 missed $missed keys; its GETs did not read what the other tool read" >&2
        exit 1
    fi
}

for size in 100 1024; do
    # GETs must find values: redis-benchmark's keys (key:NNNNNNNNNNNN) are filled here, the
    # loadgen's own keys by its unmeasured preload before each GET run.
    # Every one of them (random SETs would leave e^-n of them out): redis-cli --pipe.
    python3 -c '
import sys
keys, size = int(sys.argv[1]), int(sys.argv[2])
out, value = sys.stdout.buffer, b"x" * size
for i in range(keys):
    key = b"key:%012d" % i
    out.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key, size, value))
' "$KEYS" "$size" | redis-cli -p "$PORT" --pipe >/dev/null
    for op in get set; do
        for pipe in 1 16; do
            for run in $(seq "$RUNS"); do
                tag="$op-p$pipe-${size}b-r$run"
                before=$(misses)
                redis-benchmark -p "$PORT" -c $CLIENTS -P "$pipe" -d $size -r $KEYS \
                    -n "$(bench_requests "$op" "$pipe")" -t "$op" --csv >"$OUT/raw/rb-$tag.csv"
                [ "$op" = get ] && check_hits "rb-$tag" "$before"
                mix="{ read: 100 }"; preload=true
                [ "$op" = set ] && mix="{ write: 100 }" && preload=false
                cat >"$OUT/raw/lg-$tag.yaml" <<EOF
name: redis-calibration
target: redis
cluster: { endpoints: ["127.0.0.1:$PORT"] }
keys: { count: $KEYS, size: 16, distribution: uniform }
values: { size: $size }
mix: $mix
preload: $preload
warmup: 1s
duration: ${SECS}s
concurrency: $CLIENTS
pipeline: $pipe
connections: $CLIENTS
EOF
                rm -rf "$OUT/raw/lg-$tag"
                before=$(misses)
                "$LOADGEN" run "$OUT/raw/lg-$tag.yaml" --quiet --out "$OUT/raw/lg-$tag" >/dev/null
                [ "$op" = get ] && check_hits "lg-$tag" "$before"
                echo "$tag done" >&2
            done
        done
    done
done

python3 - "$OUT" "$RUNS" "$CLIENTS" <<'PY'
import csv, json, statistics, sys
out, runs, clients = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
settings = []
for op in ("get", "set"):
    for pipe in (1, 16):
        for size in (100, 1024):
            rb_ops, rb_p50, lg_ops, lg_p50 = [], [], [], []
            for run in range(1, runs + 1):
                tag = f"{op}-p{pipe}-{size}b-r{run}"
                with open(f"{out}/raw/rb-{tag}.csv") as f:
                    row = next(r for r in csv.DictReader(f))
                rb_ops.append(float(row["rps"]))
                rb_p50.append(float(row["p50_latency_ms"]))
                with open(f"{out}/raw/lg-{tag}/summary.json") as f:
                    p = json.load(f)["points"][0]
                o = p["ops"]["read" if op == "get" else "write"]
                other = p["ops"].get("write" if op == "get" else "read")
                if other and other["count"]:
                    sys.exit(f"lg-{tag} ran {other['count']} operations besides {op.upper()}: not the work redis-benchmark did")
                lg_ops.append(o["throughput_ops_s"])
                lg_p50.append(o["p50_us"] / 1000.0)
            med = statistics.median
            settings.append({
                "op": op.upper(), "clients": clients, "pipeline": pipe, "value_bytes": size,
                "redis_benchmark_ops_s": med(rb_ops), "loadgen_ops_s": med(lg_ops),
                "redis_benchmark_p50_ms": med(rb_p50), "loadgen_p50_ms": med(lg_p50),
                "throughput_ratio": med(lg_ops) / med(rb_ops),
                "p50_ratio": med(lg_p50) / med(rb_p50) if med(rb_p50) else None,
                "runs": {"redis_benchmark_ops_s": rb_ops, "loadgen_ops_s": lg_ops,
                         "redis_benchmark_p50_ms": rb_p50, "loadgen_p50_ms": lg_p50},
            })
with open(f"{out}/redis.json", "w") as f:
    json.dump({"settings": settings}, f, indent=2)
print("| op | pipeline | value | redis-benchmark ops/s | loadgen ops/s | ratio | redis-benchmark p50 ms | loadgen p50 ms |")
print("|---|---|---|---|---|---|---|---|")
for s in settings:
    print(f"| {s['op']} | {s['pipeline']} | {s['value_bytes']} B | {s['redis_benchmark_ops_s']:,.0f} | "
          f"{s['loadgen_ops_s']:,.0f} | {s['throughput_ratio']:.2f} | {s['redis_benchmark_p50_ms']:.3f} | {s['loadgen_p50_ms']:.3f} |")
PY
echo "results: $OUT/redis.json (raw outputs in $OUT/raw/)" >&2
