#!/usr/bin/env bash
# CPU cost per client operation, by stage of the request path (docs/performance.md).
#
# Runs workloads/capacity.yaml open loop at a fixed rate (default 5,000 ops/s: not an
# artefact of saturation), samples every process (the loadgen and the three nodes) with
# `perf record` (software cpu-clock, works without hardware counters) for a few seconds of
# the measured window, and sorts each sample's stack into a stage. One sample is 1/FREQ s
# of CPU, so a stage's cost is samples / FREQ / operations in the sampled window.
#
#   scripts/cost-budget.sh [LOADGEN_BIN] [RATE]     # needs perf (Debian: linux-perf)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/loadgen}
rate=${2:-5000}
freq=999
secs=8
out=$(mktemp -d /tmp/cost-budget.XXXXXX)
command -v perf >/dev/null || { echo "perf is needed: apt-get install linux-perf" >&2; exit 2; }
"$bin" run workloads/capacity.yaml --rate "$rate" --duration 30s --out "$out/run" --quiet \
    >"$out/run.log" 2>&1 &
run=$!
# Sample the middle of the measured window: the cluster starts (~3 s), 100k keys are
# preloaded (~15 s), 5 s of warm-up, then 30 s measured. WAIT overrides the delay.
sleep "${WAIT:-35}"
lg=$run
pids="$lg,$(pgrep -d, -P "$lg")"   # the loadgen and its nodes
perf record -F $freq -g -p "$pids" -o "$out/perf.data" -- sleep $secs >/dev/null 2>&1
wait $run || true
perf script -i "$out/perf.data" -F pid,comm,ip,sym 2>/dev/null | python3 scripts/cost-budget.py \
    --freq $freq --seconds $secs --rate "$rate" --loadgen-pid "$lg"
echo "raw: $out"
