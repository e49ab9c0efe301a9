# frozen_string_literal: true

# Replica of the published row "nio4r single thread" (the Ever README's table), as a peer row
# `ruby-nio4r`: faithful to the published design, not hardened.
#
# Design: one NIO::Selector on the main thread (libev underneath, level-triggered monitors).
# The listener stays registered; each readiness event on it does ONE blocking accept. A ready
# connection is handled inside the select block: one read_nonblock of 16384 bytes, the bytes
# fed to http_parser.rb, and for every request completed the 49-byte answer, written with
# write_nonblock (its byte count unchecked, as published). After every handling the
# connection's monitor is closed and a NEW one registered: the published re-arm
# (`@monitor&.close; @monitor = selector.register(io, :r)`).
#
# --workers: ignored. Keep-alive: the connection closes only on EOF or an error (a parse error
# or a failed read or write). No idle timeout. An accept error (EMFILE) ends the process, as
# in the published server. SIGTERM/SIGINT: exit 0 (replica.rb).
#
# --counters-out PATH: the mechanism counters (replica.rb's ReplicaCounters, the names of
# nio4r_workers.rb where they mean the same): poll_rounds, empty_polls, accepts, dispatches (a
# ready connection handled inline), empty_reads, partial_reads, answers, rearms, closes.

require "nio"
require "http/parser"
require_relative "replica"

PROGRAM = "nio4r_single"
C = ReplicaCounters.declare(%i[poll_rounds empty_polls accepts dispatches empty_reads partial_reads answers rearms
                               closes])

# One client connection: its socket, its parser, its current monitor and the answers it is owed.
class Connection
  def initialize(io, selector, counts)
    @io = io
    @selector = selector
    @counts = counts
    @answers_owed = 0
    @parser = Http::Parser.new
    @parser.on_message_complete = proc { @answers_owed += 1 }
  end

  # Re-arms for `interest` (:r or :w) with a new monitor, as published.
  def monitor(interest)
    @monitor&.close
    @monitor = @selector.register(@io, interest)
    @monitor.value = self
    @counts[C[:rearms]] += 1
  end

  def close
    @monitor&.close
    @io.close
    @counts[C[:closes]] += 1
  end

  # On readiness: writes the answers owed, or reads one chunk; then re-arms or closes.
  def on_ready
    return write_answers if @answers_owed.positive?

    data = @io.read_nonblock(Replica::READ_CHUNK_BYTES, exception: false)
    case data
    when :wait_readable
      @counts[C[:empty_reads]] += 1
      monitor(:r)
    when nil then close
    else
      @parser << data
      if @answers_owed.positive?
        write_answers
      else
        @counts[C[:partial_reads]] += 1
        monitor(:r)
      end
    end
  rescue Http::Parser::Error, SystemCallError, IOError
    close
  end

  private

  def write_answers
    if @io.write_nonblock(Replica::RESPONSE * @answers_owed, exception: false) == :wait_writable
      monitor(:w)
    else
      @counts[C[:answers]] += @answers_owed
      @answers_owed = 0
      monitor(:r)
    end
  end
end

opts = Replica.parse_options(ARGV, PROGRAM)
Replica.exit_on_stop_signals
ReplicaCounters.serve(opts.counters_out)
server = Replica.listen(opts, PROGRAM)
selector = NIO::Selector.new
selector.register(server, :r)
counts = ReplicaCounters.block
loop do
  ready = selector.select do |monitor|
    if monitor.io.equal?(server)
      counts[C[:accepts]] += 1
      Connection.new(server.accept, selector, counts).monitor(:r)
    else
      counts[C[:dispatches]] += 1
      monitor.value.on_ready
    end
  end
  counts[C[:poll_rounds]] += 1
  counts[C[:empty_polls]] += 1 unless ready&.positive?
end
