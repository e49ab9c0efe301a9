# frozen_string_literal: true

# Ever worker threads: a replica of the Ever gem's examples/http_server_worker_threads.rb (the rows
# "ever N worker thread(s)" of the gem's README table) on Ever::Loop (backends/ever/ruby, ever.so).
#
# Contract. The main thread runs the loop: a persistent read watcher on the listener accepts one
# connection per readiness event, and each connection is watched with a one-shot read watcher
# keyed by its Connection object, so a dispatched connection is disarmed (never in two workers at
# once). Every ready connection goes onto ONE shared Queue. --workers N threads pop connections,
# read_nonblock up to 16384 bytes, parse with http_parser.rb, write one response per completed
# request with write_nonblock, and hand the connection back to the loop thread with
# emit([:watch_io, conn, write?]) or emit([:close, conn]) (Ever's thread-safe emit wakes the
# loop's poll); only the loop thread watches and closes. A response the socket cannot take whole
# is finished on a one-shot write watch. The response is exactly
# "HTTP/1.1 200 OK\nContent-Length: 13\n\nHello, world!" (49 bytes, bare LF); connections are kept
# alive and closed only on EOF or an error (a parse error included); no idle timeout. Ruby's GVL
# lets one thread run Ruby code at a time; the loop releases it while it polls. SIGTERM or SIGINT
# stops the loop and exits 0 (workers blocked on the queue end with the process).
#
# Usage: ruby -I <build>/ruby ever_workers.rb [--host 127.0.0.1] [--port 1234] [--workers 1]

require "optparse"
require "socket"
begin
  require "ever"
  require "http/parser"
rescue LoadError => e
  abort "ever_workers.rb: #{e.message} (the Ever extension is built into <build>/ruby; pass it with ruby -I)"
end

RESPONSE = "HTTP/1.1 200 OK\nContent-Length: 13\n\nHello, world!"
READ_BYTES = 16_384 # the original's read size

options = { host: "127.0.0.1", port: 1234, workers: 1 }
begin
  OptionParser.new do |o|
    o.on("--host HOST", String) { |v| options[:host] = v }
    o.on("--port PORT", Integer) { |v| options[:port] = v }
    o.on("--workers N", Integer) { |v| options[:workers] = v }
  end.parse!(ARGV)
  raise OptionParser::InvalidArgument, "--port #{options[:port]} (0..65535)" unless (0..65_535).cover?(options[:port])
  raise OptionParser::InvalidArgument, "--workers #{options[:workers]} (at least 1)" unless options[:workers] >= 1
rescue OptionParser::ParseError => e
  abort "ever_workers.rb: #{e.message}"
end

# One client connection: its socket, its parser, the requests completed and the output pending.
# Owned by one thread at a time: the loop thread, or the worker that popped it.
class Connection
  attr_reader :io, :parser
  attr_accessor :completed, :pending

  def initialize(io)
    @io = io
    @completed = 0
    @pending = nil
    @parser = Http::Parser.new
    @parser.on_message_complete = proc { @completed += 1 }
  end
end

# Handles a ready connection; returns the command for the loop thread: [:watch_io, conn, write?]
# or [:close, conn].
def serve(conn)
  if conn.pending.nil?
    data = conn.io.read_nonblock(READ_BYTES, exception: false)
    return [:watch_io, conn, false] if data == :wait_readable
    return [:close, conn] if data.nil?

    conn.parser << data
    return [:watch_io, conn, false] if conn.completed.zero?

    conn.pending = RESPONSE * conn.completed
    conn.completed = 0
  end
  written = conn.io.write_nonblock(conn.pending, exception: false)
  return [:watch_io, conn, true] if written == :wait_writable

  conn.pending = written < conn.pending.bytesize ? conn.pending.byteslice(written..) : nil
  [:watch_io, conn, !conn.pending.nil?]
rescue HTTP::Parser::Error, SystemCallError, IOError
  [:close, conn]
end

begin
  server = TCPServer.new(options[:host], options[:port])
rescue SystemCallError, SocketError => e
  abort "ever_workers.rb: unable to listen on #{options[:host]}:#{options[:port]}: #{e.message}"
end
evloop = Ever::Loop.new
%w[TERM INT].each { |sig| trap(sig) { evloop.stop } }
evloop.watch_io(:accept, server, false, false)

jobs = Queue.new
options[:workers].times do
  Thread.new do
    while (conn = jobs.pop)
      evloop.emit(serve(conn))
    end
  end
end
$stdout.puts "ever_workers.rb listening on #{options[:host]}:#{server.addr[1]} with #{options[:workers]} worker thread(s)"
$stdout.flush

evloop.each do |event|
  case event
  when :accept
    socket = server.accept_nonblock(exception: false)
    evloop.watch_io(Connection.new(socket), socket, false, true) unless socket == :wait_readable
  when Connection
    jobs << event
  when Array
    command, conn, write = event
    if command == :watch_io
      evloop.watch_io(conn, conn.io, write, true)
    else
      conn.io.close
    end
  end
end
server.close
