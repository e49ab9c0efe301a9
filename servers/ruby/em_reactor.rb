# frozen_string_literal: true

# Replica of an EventMachine server (the EventMachine row of Polyphony's thread-vs-fiber
# comparison), as a peer row `ruby-em`: not hardened.
#
# Design: one EventMachine reactor (C++ underneath, epoll asked for explicitly: EventMachine's
# select() backend stops at 1024 descriptors) on the main thread. EventMachine accepts, reads
# (its own read buffer is 16 KiB, the published read size) and calls receive_data; each
# connection (EM::Connection) feeds http_parser.rb and queues the 49-byte answer per completed
# request with send_data, which EventMachine writes when the socket is writable.
#
# --workers: ignored. Keep-alive: a connection closes only on EOF or an error (a parse error
# closes it). No idle timeout. SIGTERM/SIGINT: the reactor stops and the process exits 0.

require "eventmachine"
require "http/parser"
require_relative "replica"

PROGRAM = "em_reactor"

# One client connection: EventMachine calls post_init once, then receive_data per read.
class ReplicaConnection < EM::Connection
  def post_init
    @parser = Http::Parser.new
    @parser.on_message_complete = proc { send_data(Replica::RESPONSE) }
  end

  def receive_data(data)
    @parser << data
  rescue Http::Parser::Error
    close_connection
  end
end

opts = Replica.parse_options(ARGV, PROGRAM)
EM.epoll
EM.run do
  # Before the listener exists, so that a stop signal is never met by the default action.
  %w[TERM INT].each { |sig| trap(sig) { EM.stop } }
  begin
    signature = EM.start_server(opts.host, opts.port, ReplicaConnection)
  rescue RuntimeError => e # "no acceptor (port is in use or requires root privileges)"
    warn "#{PROGRAM}: unable to bind #{opts.host}:#{opts.port}: #{e.message}"
    exit 1
  end
  port, = Socket.unpack_sockaddr_in(EM.get_sockname(signature))
  $stdout.puts "#{PROGRAM}: listening on #{opts.host}:#{port}"
  $stdout.flush
end
