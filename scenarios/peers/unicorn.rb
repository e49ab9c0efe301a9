# Peer row `unicorn` (Debian unicorn 6.0): rendered by the sweep into the run's logs/ for every
# point, with $host, $port and $peer_dir (the run's peers/unicorn/) filled in, and started as
# `unicorn -E none -c <this file> $repo/scenarios/peers/config.ru` (scenario_types.py PEERS;
# -E none: no development middleware, no access-log line per request).
#
# Prefork, as the Tipi table ran it ("4 workers each"): the master listens, loads the app and
# forks 4 workers; each accepts one connection at a time with a blocking accept, reads the
# request, runs the app and writes the response. Unicorn always answers "Connection: close" and
# closes the connection after the response, whatever the client asked for (keep-alive is not
# part of its design: it expects a buffering proxy in front), so wrk reconnects for every
# request. $threads is not used: one thread per worker is the design.
worker_processes 4
listen "$host:$port", backlog: 1024
pid "$peer_dir/unicorn.pid"
preload_app true
# A worker busy on one request for longer than this is killed by the master (Unicorn's default
# is 60 s); 30 s matches the models' idle timeout and is far above any request here.
timeout 30
