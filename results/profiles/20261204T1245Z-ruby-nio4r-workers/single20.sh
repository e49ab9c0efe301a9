#!/bin/bash
# The single-thread replica, 20 s per published column (the same windows as longrun.py).
for tc in "2 10" "4 64" "8 256" "8 1024"; do set -- $tc
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
taskset -c 0 ruby /work/wt-ruby-trace/servers/ruby/nio4r_single.rb --port $PORT > /dev/null & SP=$!; sleep 0.8
echo "-t$1 -c$2: $(taskset -c 1 wrk -t$1 -c$2 -d20s --timeout 10s http://127.0.0.1:$PORT/ | grep -E 'Requests/sec|timeout' | tr -s ' ' | tr '\n' ' ')"
kill $SP; wait $SP
done
