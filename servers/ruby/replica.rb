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

  Options = Struct.new(:host, :port, :workers)

  # Options from argv; on bad input prints one line and exits 2.
  def self.parse_options(argv, program)
    opts = Options.new(DEFAULT_HOST, DEFAULT_PORT, 1)
    parser = OptionParser.new do |o|
      o.banner = "usage: #{program} [--host ADDR] [--port N] [--workers N]"
      o.on("--host ADDR", String) { |v| opts.host = v }
      o.on("--port N", Integer) { |v| opts.port = v }
      o.on("--workers N", Integer) { |v| opts.workers = v }
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
