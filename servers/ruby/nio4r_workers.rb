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
#
# --counters-out PATH: the mechanism counters (replica.rb's ReplicaCounters; counted whether or
# not written, one Array increment each, no extra system call or lock):
#   loop thread   poll_rounds (returns of select), empty_polls (a return with no ready monitor),
#                 accepts, dispatches (jobs pushed), wakeups (pipe bytes read), directive_drains
#                 (drains of the directive queue), empty_drains (a drain that found it empty),
#                 directives (applied), rearms (monitors registered), closes (of an open
#                 connection; several workers may send [:close] for one); gauges
#                 job_queue_max (jobs waiting just after a push) and directive_queue_max
#   workers       jobs (popped), duplicate_dispatches (a job for a connection another worker
#                 holds), empty_reads (:wait_readable: nothing to read), partial_reads (bytes but
#                 no complete request), answers (requests answered), closed_jobs (a job on a
#                 connection already closed), pipe_writes (wake-up bytes written)
# A job is redundant when it is a duplicate or finds nothing to read (the level-triggered monitor
# re-reported a connection that a worker holds or has already served).

require "nio"
require "http/parser"
require_relative "replica"

PROGRAM = "nio4r_workers"
C = ReplicaCounters.declare(
  %i[poll_rounds empty_polls accepts dispatches wakeups directive_drains empty_drains directives
     rearms closes jobs duplicate_dispatches empty_reads partial_reads answers closed_jobs pipe_writes],
  %i[directive_queue_max]
)
DISPATCHES = C[:dispatches] # the per-dispatch count's index, looked up once (the hottest count)

# One client connection. monitor and close run on the loop thread only; on_job runs on
# worker threads (possibly two at once for one connection, as published).
class Connection
  def initialize(io, selector, directives, wake, counts)
    @io = io
    @selector = selector
    @directives = directives
    @wake = wake
    @loop_counts = counts
    @holders = 0 # workers in on_job for this connection now (counted, never acted on)
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
    @loop_counts[C[:rearms]] += 1
  rescue IOError
    @monitor = nil
  end

  def close
    @loop_counts[C[:closes]] += 1 unless @io.closed? # a repeated [:close] directive is not a close
    @monitor&.close
    @io.close
  end

  # A worker's job: read one chunk, answer what it completes, hand the connection back.
  # counts: the calling worker's counter block.
  def on_job(counts)
    @counts = counts
    counts[C[:jobs]] += 1
    counts[C[:duplicate_dispatches]] += 1 if @holders.positive?
    @holders += 1
    return write_answers if @answers_owed.positive?

    data = @io.read_nonblock(Replica::READ_CHUNK_BYTES, exception: false)
    case data
    when :wait_readable
      counts[C[:empty_reads]] += 1
      emit(:monitor, :r)
    when nil then emit(:close)
    else
      @parser << data
      if @answers_owed.positive?
        write_answers
      else
        counts[C[:partial_reads]] += 1
        emit(:monitor, :r)
      end
    end
  rescue Http::Parser::Error, SystemCallError, IOError => e
    counts[C[:closed_jobs]] += 1 if e.is_a?(IOError) && @io.closed?
    emit(:close)
  ensure
    @holders -= 1
  end

  private

  def write_answers
    if @io.write_nonblock(Replica::RESPONSE * @answers_owed, exception: false) == :wait_writable
      emit(:monitor, :w)
    else
      @counts[C[:answers]] += @answers_owed
      @answers_owed = 0
      emit(:monitor, :r)
    end
  end

  # A directive for the loop thread, then one byte down the pipe to wake it.
  def emit(kind, interest = nil)
    @directives << [kind, self, interest]
    @wake << "."
    @counts[C[:pipe_writes]] += 1
  end
end

opts = Replica.parse_options(ARGV, PROGRAM)
Replica.exit_on_stop_signals
ReplicaCounters.serve(opts.counters_out)
server = Replica.listen(opts, PROGRAM)
selector = NIO::Selector.new
wake_in, wake_out = IO.pipe
selector.register(server, :r)
selector.register(wake_in, :r)
jobs = Queue.new
directives = Queue.new
opts.workers.times do
  Thread.new do
    counts = ReplicaCounters.block
    while (conn = jobs.shift)
      conn.on_job(counts)
    end
  end
end

counts = ReplicaCounters.block
job_queue_max = 0
ReplicaCounters.gauge_from(:job_queue_max) { job_queue_max }
loop do
  ready = selector.select do |monitor|
    if monitor.io.equal?(server)
      counts[C[:accepts]] += 1
      Connection.new(server.accept, selector, directives, wake_out, counts).monitor(:r)
    elsif monitor.io.equal?(wake_in)
      wake_in.read(1) # one byte per wake-up, as published; level-triggered, the rest waits
      counts[C[:wakeups]] += 1
      counts[C[:directive_drains]] += 1
      counts[C[:empty_drains]] += 1 if directives.empty?
      ReplicaCounters.gauge(:directive_queue_max, directives.size)
      until directives.empty?
        kind, conn, interest = directives.shift
        counts[C[:directives]] += 1
        kind == :close ? conn.close : conn.monitor(interest)
      end
    else
      jobs << monitor.value
      counts[DISPATCHES] += 1
      waiting = jobs.size
      job_queue_max = waiting if waiting > job_queue_max
    end
  end
  counts[C[:poll_rounds]] += 1
  counts[C[:empty_polls]] += 1 unless ready&.positive?
end
