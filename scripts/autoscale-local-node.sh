#!/bin/sh
# A scaling command for `ringkv autoscale --command`: starts (`out`) or stops (`in`) a ringkv
# node on this host. A recipe to adapt: for Kubernetes, `out` would scale the StatefulSet up and
# print the new pod's id and address; for VMs, start one from an image.
#
#   ringkv autoscale --endpoint HOST:PORT --command 'sh scripts/autoscale-local-node.sh' ...
#
# Environment it reads:
#   RINGKV_CLUSTER_DIR   the cluster directory (CA, CA key, tokens); the new node's certificate
#                        is made there with `ringkv certs`
#   RINGKV_SCALE_DIR     where the nodes it starts keep data, logs and pid files
#   RINGKV_ADDRESS_POOL  a file of spare HOST:PORT addresses, one per line; `out` takes the
#                        first one no node of this script holds
#   RINGKV_BIN           the ringkv binary (default: ringkv on PATH)
#   RINGKV_NODE_ARGS     more node flags, e.g. "--replication 3 --tokens 64"
# and, from the autoscaler: RINGKV_ACTION, RINGKV_REASON, RINGKV_NODE_ID (for `in`).
#
# `out` prints "ID HOST:PORT" as its last line once the node answers; `in` stops the node
# that has already left the ring.
set -eu
bin="${RINGKV_BIN:-ringkv}"
dir="$RINGKV_SCALE_DIR"
mkdir -p "$dir"

case "${1:-}" in
out)
    while read -r addr; do
        [ -n "$addr" ] || continue
        host="${addr%:*}"
        port="${addr##*:}"
        id="s$port"
        [ -e "$dir/$id.pid" ] && continue
        "$bin" certs --dir "$RINGKV_CLUSTER_DIR" --nodes "$id@$host" >/dev/null
        # shellcheck disable=SC2086 # RINGKV_NODE_ARGS is a list of flags
        "$bin" node --id "$id" --listen "$addr" --data-dir "$dir/$id" --join \
            --cluster-dir "$RINGKV_CLUSTER_DIR" ${RINGKV_NODE_ARGS:-} \
            >"$dir/$id.log" 2>&1 </dev/null &
        echo $! >"$dir/$id.pid"
        tries=0
        until "$bin" status --endpoint "$addr" >/dev/null 2>&1; do
            tries=$((tries + 1))
            if [ "$tries" -ge 100 ]; then
                echo "node $id at $addr did not answer within 10 s; see $dir/$id.log" >&2
                exit 1
            fi
            sleep 0.1
        done
        echo "$id $addr"
        exit 0
    done <"$RINGKV_ADDRESS_POOL"
    echo "no spare address left in $RINGKV_ADDRESS_POOL" >&2
    exit 1
    ;;
in)
    pidfile="$dir/$RINGKV_NODE_ID.pid"
    if [ ! -e "$pidfile" ]; then
        echo "node $RINGKV_NODE_ID was not started by this script (no $pidfile)" >&2
        exit 1
    fi
    pid="$(cat "$pidfile")"
    kill -TERM "$pid" 2>/dev/null || true
    tries=0
    while kill -0 "$pid" 2>/dev/null; do
        tries=$((tries + 1))
        if [ "$tries" -ge 100 ]; then
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.1
    done
    rm -f "$pidfile"
    ;;
*)
    echo "usage: $0 out|in" >&2
    exit 2
    ;;
esac
