#!/bin/bash
# Instructions per request in user space, per model, under a bounded pipelined load:
# each model's whole server process runs under callgrind, the counters are zeroed once
# it is serving and dumped after wrk (-t1 -c64, depth 16 with scripts/lua/cbench.lua: the bytes
# of the table's pipelined runs) stops, so the figure covers the load window (plus at most the
# 1,024 requests still in flight when wrk stops, which wrk does not count: under 2%). callgrind counts user space only (the kernel's share of
# a request is not in it): this is the part the models' own loops, the pump and the codec own.
# Deterministic enough to compare before and after on a busy machine; not a timing.
#
#   bench/callgrind_models.sh BUILD_DIR [SECONDS] [MODEL...]
# BUILD_DIR holds cbench-server. Prints "model Ir requests Ir/request" lines and
# keeps the dumps in $OUT (default /tmp/cbench-callgrind-models). Load on CPU 1, server on CPU 0.
set -euo pipefail
build=${1:?usage: callgrind_models.sh BUILD_DIR [SECONDS] [MODEL...]}
seconds=${2:-3}
shift $(( $# >= 2 ? 2 : 1 ))
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(floor epoll-reactor pull-loop libuv multi-reactor)
lua=$(dirname "$0")/../scripts/lua/cbench.lua
out=${OUT:-/tmp/cbench-callgrind-models}
mkdir -p "$out"
for model in "${models[@]}"; do
  log=$out/$model.log
  dump=$out/$model.callgrind
  rm -f "$dump"*
  taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$dump" \
    "$build/cbench-server" --model "$model" --port 0 --threads 1 >"$log" 2>&1 &
  vg=$!
  port=""
  for _ in $(seq 600); do
    port=$(sed -n 's/.*cbench-server ready .* port=\([0-9]*\).*/\1/p' "$log" | head -1)
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { echo "$model: not ready: $(tail -3 "$log")" >&2; kill "$vg"; wait "$vg" || true; continue; }
  timeout 120 callgrind_control -z "$vg" >/dev/null || echo "$model: zero failed" >&2
  json=$(timeout $((seconds + 60)) taskset -c 1 wrk -t1 -c64 -d"${seconds}s" --timeout 30s -s "$lua" "http://127.0.0.1:$port/" -- pipeline=16 |
         sed -n 's/^cbench-wrk-json: //p' || true)
  timeout 120 callgrind_control -d "$vg" >/dev/null || echo "$model: dump failed" >&2
  kill -INT "$vg"
  ( sleep 60; kill -KILL "$vg" 2>/dev/null ) &
  wait "$vg" || true
  requests=$(printf '%s' "$json" | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["requests"])')
  # The dump made by -d (the load window) is the numbered one; the final one holds only the stop.
  window=$(ls "$dump".* 2>/dev/null | head -1)
  ir=$(sed -n 's/^summary: *//p; s/^totals: *//p' "$window" | head -1)
  printf '%-14s Ir %12s  requests %9s  Ir/request %6s\n' "$model" "$ir" "$requests" \
    "$(( requests > 0 ? ir / requests : 0 ))"
done
