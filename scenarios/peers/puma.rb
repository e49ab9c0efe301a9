# Peer row `puma` (Debian puma 5.6): rendered by the sweep into the run's logs/ for every point,
# with $host, $port, $threads, $peer_dir (the run's peers/puma/) and $repo filled in, and started
# as `puma -C <this file>` (scenario_types.py PEERS).
#
# Cluster mode with 4 workers, as the Tipi table ran every server ("4 workers each"): the master
# binds, forks the workers and only supervises; each worker runs an accept thread, a reactor for
# slow or idle keep-alive connections and a pool of $threads threads (min = max, so no thread is
# started or reaped during a point) that parse and run the Rack app under Ruby's GVL.
workers 4
threads $threads, $threads
bind "tcp://$host:$port"
rackup "$repo/scenarios/peers/config.ru"
# production: no development-only middleware; quiet: no access-log line per request.
environment "production"
quiet
# The app is loaded once in the master and the workers are forked from it (copy-on-write), so
# the 4 workers are ready about as soon as one would be.
preload_app!
pidfile "$peer_dir/puma.pid"
# Idle keep-alive connections close after 30 s, like the models (--idle-timeout-ms 30000).
persistent_timeout 30
# On SIGTERM the master stops the workers gracefully and kills those still running after this
# many seconds: below the harness's 5 s grace (run/server.py STOP_GRACE_S), so the master itself
# reaps every worker.
worker_shutdown_timeout 3
