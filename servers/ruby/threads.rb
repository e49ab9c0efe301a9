# frozen_string_literal: true

# Replica of a thread-per-connection server (the design of the blog's thread server and of
# Polyphony's thread-vs-fiber comparison), as a peer row `ruby-threads`: not hardened.
#
# Design: the main thread does blocking accepts; every connection gets its own Ruby thread,
# which reads with blocking readpartial(16384) (the GVL is released while it waits), feeds
# http_parser.rb and writes the 49-byte answer per completed request with a blocking write.
#
# --workers: ignored (the thread count follows the connection count). Keep-alive: a connection
# closes only on EOF or an error. No idle timeout, no thread limit; an accept error (EMFILE)
# ends the process. SIGTERM/SIGINT: exit 0 (replica.rb), which ends every connection thread.

require "http/parser"
require_relative "replica"

PROGRAM = "threads"

# Serves one connection until EOF or an error, then closes it.
def serve(io)
  answers_owed = 0
  parser = Http::Parser.new
  parser.on_message_complete = proc { answers_owed += 1 }
  loop do
    parser << io.readpartial(Replica::READ_CHUNK_BYTES)
    next unless answers_owed.positive?

    io.write(Replica::RESPONSE * answers_owed)
    answers_owed = 0
  end
rescue EOFError, Http::Parser::Error, SystemCallError, IOError
  nil
ensure
  io.close
end

opts = Replica.parse_options(ARGV, PROGRAM)
Replica.exit_on_stop_signals
server = Replica.listen(opts, PROGRAM)
loop do
  conn = server.accept
  Thread.new(conn) { |io| serve(io) }
end
