#!/bin/bash
# usage: profile.sh SCRIPT WORKERS T C OUTPREFIX
set -e
S=$1; W=$2; T=$3; C=$4; O=$5
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
taskset -c 0 ruby /work/wt-ruby-trace/servers/ruby/$S --port $PORT --workers $W --counters-out $O.counters.json > $O.server.log 2>&1 &
SP=$!
sleep 0.8
kill -USR1 $SP; sleep 0.2; cp $O.counters.json $O.counters-before.json
taskset -c 1 wrk -t$T -c$C -d5s --timeout 10s http://127.0.0.1:$PORT/ > $O.wrk.txt &
WP=$!
sleep 0.5
perf record -e cpu-clock -g -F 2000 -p $SP -o $O.perf.data -- sleep 4 2> $O.perf-record.log
wait $WP
kill -USR1 $SP; sleep 0.3; cp $O.counters.json $O.counters-after.json
kill -TERM $SP; wait $SP || true
