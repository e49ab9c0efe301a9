#!/usr/bin/env ruby
# frozen_string_literal: true

# Peer row `async-http` (scenario_types.py PEERS): the HTTP server of the async-http gem (the
# library Falcon is built on; Debian ruby-async-http 0.59, async 1.30), in N forked processes,
# started as `ruby async_http_server.rb --host H --port P --processes N`.
#
# This is not Falcon. Falcon adds, around this same Async::HTTP::Server, a Rack adapter (each
# request turned into a Rack env and back), its own process supervisor and its middleware
# (verbose logging, content encoding, redirection). Here the application is a Protocol::HTTP
# block answering every request with 200 text/plain "Hello, world!" (Content-Length 13): no
# Rack layer, so a request costs less Ruby than it would under Falcon.
#
# Design, per process: one thread, one Async reactor (nio4r, so epoll), one fiber per
# connection that reads, parses (protocol-http1, in Ruby) and writes with blocking-style calls
# that yield to the reactor; keep-alive until the client closes.
#
# Processes: the parent binds the listening socket once and forks N children that share it (one
# accept queue, as Falcon's own container and cbench-server's cluster mode do). The parent only
# supervises: on SIGTERM or SIGINT it passes SIGTERM to the children and waits for them; if a
# child exits on its own, the parent stops the others and exits 1, so a broken server fails its
# point instead of running on with fewer processes.
#
# Exit status: 0 after a requested stop, 1 if a child died, 2 on bad arguments or a failed bind
# (one line on stderr).

require "optparse"
require "async"
require "async/http/server"
require "async/http/endpoint"
require "async/io/shared_endpoint"
require "protocol/http/response"

HEADERS = [["content-type", "text/plain"]].freeze
BODY = "Hello, world!"

def parse_options(argv)
  options = { host: "127.0.0.1", port: nil, processes: 4 }
  OptionParser.new do |o|
    o.on("--host HOST") { |v| options[:host] = v }
    o.on("--port PORT", Integer) { |v| options[:port] = v }
    o.on("--processes N", Integer) { |v| options[:processes] = v }
  end.parse!(argv)
  raise OptionParser::InvalidArgument, "--port is required" unless options[:port]
  raise OptionParser::InvalidArgument, "--processes must be 1 or more" unless options[:processes] >= 1
  options
end

def hello(_request)
  Protocol::HTTP::Response[200, Protocol::HTTP::Headers[HEADERS], [BODY]]
end

# Serves on the shared, already bound endpoint; runs in a child. SIGTERM and SIGINT keep Ruby's
# default action (SignalException raised in the reactor's thread): the reactor unwinds, its
# connections are closed, and the process exits by the signal.
def serve(bound, url_endpoint)
  server = Async::HTTP::Server.for(bound, protocol: url_endpoint.protocol,
                                          scheme: url_endpoint.scheme) { |request| hello(request) }
  %w[TERM INT].each { |sig| Signal.trap(sig, "DEFAULT") }
  Async { server.run }
end

def supervise(children)
  stopping = false
  %w[TERM INT].each do |sig|
    Signal.trap(sig) do
      stopping = true
      children.each { |pid| Process.kill("TERM", pid) rescue Errno::ESRCH }
    end
  end
  status = 0
  until children.empty?
    pid = Process.wait
    children.delete(pid)
    next if stopping
    warn "async-http: process #{pid} exited on its own (#{$?}); stopping the others"
    stopping = true
    status = 1
    children.each { |other| Process.kill("TERM", other) rescue Errno::ESRCH }
  end
  status
end

# The listening socket, bound in the parent before any fork. async-io binds only inside a task;
# the error is caught in the task (an error leaving it would also be logged by Async) and
# returned instead of the endpoint.
def bind_shared(url_endpoint)
  Async do
    Async::IO::SharedEndpoint.bound(url_endpoint)
  rescue SystemCallError, SocketError => e
    e
  end.wait
end

begin
  options = parse_options(ARGV)
  url_endpoint = Async::HTTP::Endpoint.parse("http://#{options[:host]}:#{options[:port]}")
  bound = bind_shared(url_endpoint)
  raise bound if bound.is_a?(Exception)
rescue OptionParser::ParseError, SystemCallError, SocketError => e
  warn "async-http: #{e.message}"
  exit 2
end

children = Array.new(options[:processes]) do
  fork do
    serve(bound, url_endpoint)
    exit! 0
  end
end
exit supervise(children)
