# frozen_string_literal: true

# Shared by the Ruby replicas of the published servers (servers/ruby/*.rb): the answer bytes,
# the read size, the command line and the listener, so that the replicas differ only in their
# concurrency design, as the published example servers did.
#
# Contract:
#   --host ADDR   the address to bind (default 127.0.0.1; the published servers bound 0.0.0.0,
#                 the replicas bind only what they are given)
#   --port N      the port (default 1234, the published one; 0 picks a free port)
#   --workers N   worker threads, for the designs that have them (default 1)
#   --counters-out PATH   the replica's mechanism counters as JSON, on SIGUSR1 and at exit, for
#                 the replicas that count (ReplicaCounters below); others ignore it
# A bad option or value prints one line, "PROGRAM: problem", and exits 2; a listener that
# cannot be bound prints "PROGRAM: unable to bind HOST:PORT: reason" and exits 1. Once bound,
# one line "PROGRAM: listening on HOST:PORT" goes to stdout (the harness does not need it: a
# peer is ready when it accepts). SIGTERM and SIGINT end the process with status 0.
#
# The replicas are faithful to the published designs, not hardened: no idle timeout, no limit
# on connections or request size, no EMFILE back-off.

require "optparse"
require "socket"

module Replica
  # The published example servers' whole answer: 49 bytes, bare LF line endings, no other
  # header. Every request gets exactly these bytes; the connection stays open.
  RESPONSE = "HTTP/1.1 200 OK\nContent-Length: 13\n\nHello, world!"
  # The published servers read with read_nonblock(16384).
  READ_CHUNK_BYTES = 16_384
  DEFAULT_HOST = "127.0.0.1"
  DEFAULT_PORT = 1234
  MAX_WORKERS = 1024

  Options = Struct.new(:host, :port, :workers, :counters_out)

  # Options from argv; on bad input prints one line and exits 2.
  def self.parse_options(argv, program)
    opts = Options.new(DEFAULT_HOST, DEFAULT_PORT, 1)
    parser = OptionParser.new do |o|
      o.banner = "usage: #{program} [--host ADDR] [--port N] [--workers N] [--counters-out PATH]"
      o.on("--host ADDR", String) { |v| opts.host = v }
      o.on("--port N", Integer) { |v| opts.port = v }
      o.on("--workers N", Integer) { |v| opts.workers = v }
      o.on("--counters-out PATH", String) { |v| opts.counters_out = v }
    end
    rest = parser.parse(argv)
    fail_usage(program, "unexpected argument #{rest.first.inspect}") unless rest.empty?
    fail_usage(program, "--port #{opts.port}: expected 0 to 65535") unless (0..65_535).cover?(opts.port)
    unless (1..MAX_WORKERS).cover?(opts.workers)
      fail_usage(program, "--workers #{opts.workers}: expected 1 to #{MAX_WORKERS}")
    end
    opts
  rescue OptionParser::ParseError => e
    fail_usage(program, e.message)
  end

  def self.fail_usage(program, message)
    warn "#{program}: #{message}"
    exit 2
  end

  # A TCPServer bound to opts.host:opts.port, announced on stdout; exits 1 if it cannot bind.
  def self.listen(opts, program)
    server = TCPServer.new(opts.host, opts.port)
    $stdout.puts "#{program}: listening on #{opts.host}:#{server.local_address.ip_port}"
    $stdout.flush
    server
  rescue SystemCallError, SocketError => e
    warn "#{program}: unable to bind #{opts.host}:#{opts.port}: #{e.message}"
    exit 1
  end

  # SIGTERM and SIGINT raise SystemExit(0) in the main thread, which ends every other thread.
  # Call it before listen: a signal sent once the server accepts then never meets the default
  # action (death by the signal).
  def self.exit_on_stop_signals
    %w[TERM INT].each { |sig| trap(sig) { exit 0 } }
  end
end

# Mechanism counters of a replica, in cbench-server's --counters-out format
# (backends/stats/counters.h), so that the harness snapshots a replica around its measured window
# as it does a model (scripts/cbenchlib/run/servercounters.py): a JSON object {"snapshot": K,
# "pid": P, "counters": {NAME: N, ...}, "gauges": {NAME: N, ...}}, written to PATH.tmp and renamed
# to PATH on SIGUSR1 and at exit. Counters are cumulative since start (the harness differences two
# snapshots); gauges are high-water marks since start (not differenced: a maximum, not a count).
# Every replica that counts also reports the interpreter's garbage collector (GC.stat, read when a
# snapshot is written): counters gc_runs, gc_major_runs, gc_time_ms; gauge heap_live_slots (now).
#
# Cost: each thread counts into its own Array (block), taken once when the thread starts; a count
# is one Array element increment. Blocks are summed only when a snapshot is written. No lock on the
# hot path: the blocks list is appended to under a Mutex at thread start and only read otherwise
# (a trap handler may not take a Mutex).
#
# Counting does not change a replica's design: no extra system call, wake-up or lock per request.
module ReplicaCounters
  @names = []
  @blocks = []
  @gauges = {}
  @register = Mutex.new
  @snapshots = 0

  class << self
    attr_reader :names

    # Declares the counter names of this replica (their order is the block's index order) and the
    # gauges it keeps; returns a Hash name -> index.
    def declare(names, gauges = [])
      @names = names.freeze
      gauges.each { |g| @gauges[g] = 0 }
      names.each_with_index.to_h
    end

    # A new zeroed block for the calling thread, registered for snapshots.
    def block
      b = Array.new(@names.size, 0)
      @register.synchronize { @blocks << b }
      b
    end

    # Raises gauge `name` to `value` if that is higher.
    def gauge(name, value)
      @gauges[name] = value if value > @gauges[name]
    end

    # Gauge `name` is read from the block when a snapshot is written (for a high-water mark kept
    # in a local variable of a hot loop, where a method call per event would cost more).
    def gauge_from(name, &read)
      (@gauge_readers ||= {})[name] = read
    end

    def json
      sums = Array.new(@names.size, 0)
      @blocks.each { |b| b.each_with_index { |v, i| sums[i] += v } }
      gc = GC.stat
      pairs = @names.each_with_index.map { |n, i| [n, sums[i]] } +
              [[:gc_runs, gc[:count]], [:gc_major_runs, gc[:major_gc_count]], [:gc_time_ms, gc[:time] || 0]]
      counters = pairs.map { |n, v| "\"#{n}\": #{v}" }.join(", ")
      read = (@gauge_readers || {}).map { |n, r| [n, r.call] }
      gauges = (@gauges.to_a + read + [[:heap_live_slots, gc[:heap_live_slots]]]).map { |n, v| "\"#{n}\": #{v}" }.join(", ")
      @snapshots += 1
      "{\"snapshot\": #{@snapshots}, \"pid\": #{Process.pid}, \"counters\": {#{counters}}, " \
        "\"gauges\": {#{gauges}}}\n"
    end

    # Writes a snapshot to path (atomically: PATH.tmp renamed); a failure prints one line.
    def write(path)
      File.write("#{path}.tmp", json)
      File.rename("#{path}.tmp", path)
    rescue SystemCallError => e
      warn "replica counters: unable to write #{path}: #{e.message}"
    end

    # With a path: a snapshot on every SIGUSR1 and one at exit. Call before listen (as
    # Replica.exit_on_stop_signals), so that the harness's first SIGUSR1 never meets the default
    # action (death by the signal).
    def serve(path)
      return if path.nil?

      trap("USR1") { write(path) }
      at_exit { write(path) }
    end
  end
end
