# frozen_string_literal: true

# Replica of the published rows "nio4r N worker threads" (the Ever README's table), as a peer
# row `ruby-nio4r-workers` (--workers = the row's threads): faithful to the published design,
# including what makes it slow, not hardened.
#
# Design: the main thread runs one NIO::Selector (libev underneath, level-triggered) with the
# listener, the read end of a pipe and every connection registered. In the select block it
# only (a) does one blocking accept per readiness event on the listener, (b) on the pipe, reads
# ONE byte and then drains the whole directive queue, closing connections and re-arming them
# with a new monitor, (c) for a ready connection, pushes `monitor.value` onto ONE shared job
# Queue. The connection's monitor stays registered and level-triggered while it waits in the
# queue or a worker handles it, so every select that finds it still unread pushes the same
# connection again: several workers may hold one connection at once, and a worker whose read
# finds nothing (:wait_readable) sends another [:monitor, conn, :r]. There is no
# per-connection lock (the published mechanism; keep it).
#
# N worker threads pop connections, read_nonblock(16384, exception: false), parse with
# http_parser.rb, write the 49-byte answer per completed request (write_nonblock, byte count
# unchecked), and hand back [:monitor, conn, :r] or [:close, conn] on the directive queue,
# then write one byte to the pipe (`$o << '.'`: a blocking write) to wake the loop.
#
# --workers N: the worker threads (default 1). Keep-alive: a connection closes only on EOF or
# an error. No idle timeout; an accept error (EMFILE) ends the process, as published.
# SIGTERM/SIGINT: exit 0 (replica.rb).

require "nio"
require "http/parser"
require_relative "replica"

PROGRAM = "nio4r_workers"

# One client connection. monitor and close run on the loop thread only; on_job runs on
# worker threads (possibly two at once for one connection, as published).
class Connection
  def initialize(io, selector, directives, wake)
    @io = io
    @selector = selector
    @directives = directives
    @wake = wake
    @answers_owed = 0
    @parser = Http::Parser.new
    @parser.on_message_complete = proc { @answers_owed += 1 }
  end

  # Re-arms for `interest` with a new monitor, as published; a connection closed by an
  # earlier directive is left unregistered.
  def monitor(interest)
    @monitor&.close
    @monitor = @selector.register(@io, interest)
    @monitor.value = self
  rescue IOError
    @monitor = nil
  end

  def close
    @monitor&.close
    @io.close
  end

  # A worker's job: read one chunk, answer what it completes, hand the connection back.
  def on_job
    return write_answers if @answers_owed.positive?

    data = @io.read_nonblock(Replica::READ_CHUNK_BYTES, exception: false)
    case data
    when :wait_readable then emit(:monitor, :r)
    when nil then emit(:close)
    else
      @parser << data
      @answers_owed.positive? ? write_answers : emit(:monitor, :r)
    end
  rescue Http::Parser::Error, SystemCallError, IOError
    emit(:close)
  end

  private

  def write_answers
    if @io.write_nonblock(Replica::RESPONSE * @answers_owed, exception: false) == :wait_writable
      emit(:monitor, :w)
    else
      @answers_owed = 0
      emit(:monitor, :r)
    end
  end

  # A directive for the loop thread, then one byte down the pipe to wake it.
  def emit(kind, interest = nil)
    @directives << [kind, self, interest]
    @wake << "."
  end
end

opts = Replica.parse_options(ARGV, PROGRAM)
Replica.exit_on_stop_signals
server = Replica.listen(opts, PROGRAM)
selector = NIO::Selector.new
wake_in, wake_out = IO.pipe
selector.register(server, :r)
selector.register(wake_in, :r)
jobs = Queue.new
directives = Queue.new
opts.workers.times do
  Thread.new do
    while (conn = jobs.shift)
      conn.on_job
    end
  end
end

loop do
  selector.select do |monitor|
    if monitor.io.equal?(server)
      Connection.new(server.accept, selector, directives, wake_out).monitor(:r)
    elsif monitor.io.equal?(wake_in)
      wake_in.read(1) # one byte per wake-up, as published; level-triggered, the rest waits
      until directives.empty?
        kind, conn, interest = directives.shift
        kind == :close ? conn.close : conn.monitor(interest)
      end
    else
      jobs << monitor.value
    end
  end
end
