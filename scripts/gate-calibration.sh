#!/usr/bin/env bash
# Calibrates the loadgen performance gate on this machine; every number comes from real runs.
#
#   1. A/A false-alarm rate: AA (default 20) interleaved A/A comparisons of the same build with
#      workloads/ci-gate.yaml (loadgen ab, K runs a side). Target: at most 1 in 20 fail.
#   2. Detection rate: RR (default 10) interleaved comparisons where side B's nodes run with
#      --read-repair-chance 1.0 (reads ask all three replicas) against the default 0.1.
#      Target: at least 90% fail.
#   3. Smallest slowdown detected reliably: for each chance in CHANCES (default "0.25 0.5"),
#      SMALL (default 5) comparisons, with the observed change in node CPU per operation.
#
# Writes results/gate/<kind>-<n>/ (a/, b/, compare.json, compare.md, compare.png),
# results/gate/calibration.tsv (one line per comparison) and results/gate/calibration.md
# (the table for README). Takes about 2.5 minutes per comparison at K = 5 on 2 cores.
#
# Usage: [LOADGEN=path] scripts/gate-calibration.sh [AA=20] [RR=10] [K=5] [CHANCES="0.25 0.5"] [SMALL=5]
set -euo pipefail
cd "$(dirname "$0")/.."

for kv in "$@"; do
    case "$kv" in
        AA=*|RR=*|K=*|CHANCES=*|SMALL=*) export "${kv?}" ;;
        *) echo "unknown argument: $kv (expected AA=, RR=, K=, CHANCES=, SMALL=)" >&2; exit 2 ;;
    esac
done
AA=${AA:-20}
RR=${RR:-10}
K=${K:-5}
CHANCES=${CHANCES:-"0.25 0.5"}
SMALL=${SMALL:-5}
WORKLOAD=workloads/ci-gate.yaml
OUT=results/gate

# LOADGEN=path runs a binary built before (e.g. a copy, so rebuilding meanwhile cannot
# swap the binary under a running calibration).
if [ -z "${LOADGEN:-}" ]; then
    cargo build --release -p loadgen
    LOADGEN=target/release/loadgen
fi
mkdir -p "$OUT"
TSV="$OUT/calibration.tsv"
printf 'kind\tn\texit\tcpu_change_pct\tread_p99_change_pct\tcpu_detectable_pct\tfolder\n' > "$TSV"

# Reads one field of compare.json with the tools every CI image has (python3 is optional).
field() { # file metric op key
    python3 - "$@" <<'PY' 2>/dev/null || echo ""
import json, sys
path, metric, op, key = sys.argv[1:5]
rows = json.load(open(path))["rows"]
for r in rows:
    if r["metric"] == metric and r["op"] == op and r.get(key) is not None:
        v = r[key]
        print(f"{v * 100:.1f}" if isinstance(v, float) else v)
        break
PY
}

one() { # kind n [b-node-args]
    local kind=$1 n=$2 dir="$OUT/$1-$(printf %02d "$2")"
    shift 2
    rm -rf "$dir"
    local code=0
    if [ $# -gt 0 ]; then
        "$LOADGEN" ab "$WORKLOAD" --repeat "$K" --out "$dir" --quiet --b-node-args "$1" \
            > "$dir.txt" 2>&1 || code=$?
    else
        "$LOADGEN" ab "$WORKLOAD" --repeat "$K" --out "$dir" --quiet > "$dir.txt" 2>&1 || code=$?
    fi
    local j="$dir/compare.json"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$kind" "$n" "$code" \
        "$(field "$j" cpu_us_per_op all worse_by)" "$(field "$j" p99 read worse_by)" \
        "$(field "$j" cpu_us_per_op all detectable)" "$dir" >> "$TSV"
    echo "$kind $n: exit $code" >&2
}

for i in $(seq 1 "$AA"); do one aa "$i"; done
for i in $(seq 1 "$RR"); do one rr1.0 "$i" "--read-repair-chance 1.0"; done
for c in $CHANCES; do
    for i in $(seq 1 "$SMALL"); do one "rr$c" "$i" "--read-repair-chance $c"; done
done

# The table.
awk -F'\t' -v k="$K" '
NR == 1 { next }
{
    n[$1]++
    if ($3 == 3) fail[$1]++
    if ($3 != 0 && $3 != 3) broken[$1]++
    cpu[$1] = cpu[$1] (cpu[$1] == "" ? "" : ", ") $4
    if ($6 != "") { det[$1] += $6; detn[$1]++ }
}
END {
    print "| comparison (K = " k " runs a side) | comparisons | failed the gate | could not run | node CPU/op change (each) | mean detectable CPU change |"
    print "|---|---|---|---|---|---|"
    for (kind in n) {
        printf "| %s | %d | %d (%.0f%%) | %d | %s | %s |\n", kind, n[kind], fail[kind], 100 * fail[kind] / n[kind], broken[kind], cpu[kind], (detn[kind] ? sprintf("%.1f%%", det[kind] / detn[kind]) : "—")
    }
}' "$TSV" > "$OUT/calibration.md"
{
    echo
    echo "aa: A/A, the same build on both sides (false alarms); rrX: side B with --read-repair-chance X"
    echo "(default 0.1). Machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg);"
    echo "revision $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(date -u +%Y-%m-%dT%H:%MZ)."
} >> "$OUT/calibration.md"
cat "$OUT/calibration.md"
