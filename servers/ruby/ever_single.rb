# frozen_string_literal: true

# Ever single thread: a replica of the Ever gem's examples/http_server_single_thread.rb (the row
# "ever single thread" of the gem's README table) on Ever::Loop (backends/ever/ruby, ever.so).
#
# Contract. One thread runs one loop. A persistent read watcher on the listener accepts one
# connection per readiness event. Each connection is watched with a one-shot read watcher keyed
# by its Connection object; a ready connection is handled inline on the loop thread: one
# read_nonblock of up to 16384 bytes, parsed with http_parser.rb, one response per completed
# request, written with write_nonblock. It is re-armed as the original does, by emitting
# [:watch_io, conn, write?] for the loop to watch it one-shot again in the next batch; a response
# the socket cannot take whole is finished on a one-shot write watch. The response is exactly
# "HTTP/1.1 200 OK\nContent-Length: 13\n\nHello, world!" (49 bytes, bare LF); connections are kept
# alive and closed only on EOF or an error (a parse error included); no idle timeout. SIGTERM or
# SIGINT stops the loop and exits 0.
#
# Usage: ruby -I <build>/ruby ever_single.rb [--host 127.0.0.1] [--port 1234] [--workers 1]
#   --workers: accepted for the harness's uniform command line; must be 1 (one thread serves).

require "optparse"
require "socket"
begin
  require "ever"
  require "http/parser"
rescue LoadError => e
  abort "ever_single.rb: #{e.message} (the Ever extension is built into <build>/ruby; pass it with ruby -I)"
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
  raise OptionParser::InvalidArgument, "--workers #{options[:workers]} (one thread serves: 1)" unless options[:workers] == 1
rescue OptionParser::ParseError => e
  abort "ever_single.rb: #{e.message}"
end

# One client connection: its socket, its parser, the requests completed and the output pending.
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

# Handles a ready connection; returns the next command for the loop: [:watch_io, conn, write?]
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
  abort "ever_single.rb: unable to listen on #{options[:host]}:#{options[:port]}: #{e.message}"
end
evloop = Ever::Loop.new
%w[TERM INT].each { |sig| trap(sig) { evloop.stop } }
evloop.watch_io(:accept, server, false, false)
$stdout.puts "ever_single.rb listening on #{options[:host]}:#{server.addr[1]}"
$stdout.flush

evloop.each do |event|
  case event
  when :accept
    socket = server.accept_nonblock(exception: false)
    evloop.emit([:watch_io, Connection.new(socket), false]) unless socket == :wait_readable
  when Connection
    evloop.emit(serve(event))
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
