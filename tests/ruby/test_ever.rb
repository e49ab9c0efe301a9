# frozen_string_literal: true

# Ever::Loop (backends/ever/ruby/ever_ext.cpp) from Ruby: the gem's API on the project's pull
# loop, every test run against both pull-loop backends. Run by ctest (ruby_ever) as
#   ruby -I <build>/ruby tests/ruby/test_ever.rb
#
# Behaviour only: waits are bounded and generous (a watchdog stops a loop that would otherwise
# hang a failing test), and nothing asserts how long anything took.

require "minitest/autorun"
require "ever"
require "socket"

module EverLoopTests
  WATCHDOG_S = 10 # a lost wake-up fails the test after this instead of hanging it

  def setup
    super
    @loop = Ever::Loop.new(self.class::BACKEND)
    @pipes = []
    @threads = []
  end

  def teardown
    @threads.each(&:kill)
    @threads.each do |t|
      t.join
    rescue StandardError
      nil # a thread a test raised into: the test has checked its exception
    end
    @pipes.flatten.each { |io| io.close unless io.closed? }
    super
  end

  def pipe
    r, w = IO.pipe
    @pipes << [r, w]
    [r, w]
  end

  def in_thread(&block)
    t = Thread.new(&block)
    @threads << t
    t
  end

  # Stops the loop after WATCHDOG_S so that a test waiting for an event that never comes fails.
  def watchdog
    in_thread do
      sleep WATCHDOG_S
      @loop.stop
    end
  end

  # The keys next_event hands out until (and without) `marker`, which a timer emits after a
  # short while: what arrives in that window. A key that should not come shows up here.
  def keys_until_marker(marker = :marker, after_s = 0.05)
    @loop.watch_timer(marker, after_s, 0)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + WATCHDOG_S
    keys = []
    while (key = @loop.next_event) != marker
      flunk "the marker timer never fired" if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
      keys << key unless key.nil?
      break if keys.size > 1000 # a watch firing every round where it should not
    end
    keys
  end

  def test_keys_are_the_watched_and_emitted_objects
    obj = Object.new
    keys = ["a string", :sym, [1, [2, 3]], 42, obj, nil.to_a, 3.5]
    keys.each { |k| @loop.emit(k) }
    got = keys.map { @loop.next_event }
    assert_equal keys, got
    assert_same obj, got[4]

    r, w = pipe
    io_key = [:conn, Object.new]
    @loop.watch_io(io_key, r, false, true)
    w << "x"
    watchdog
    assert_same io_key, @loop.next_event
  end

  def test_watched_keys_survive_garbage_collection
    r, w = pipe
    @loop.watch_io(+"io" + "-key", r, false, false)
    @loop.watch_timer(+"timer" + "-key", 0.01, 0)
    20.times { |i| @loop.emit(+"emitted-#{i}") }
    GC.start(full_mark: true, immediate_sweep: true)
    GC.compact if GC.respond_to?(:compact)
    w << "x"
    watchdog
    got = []
    got << @loop.next_event until got.include?("timer-key") && got.include?("io-key")
    assert_equal (0...20).map { |i| "emitted-#{i}" }, got.grep(/emitted/)
  end

  def test_oneshot_read_watch_fires_once
    r, w = pipe
    @loop.watch_io(:reader, r, false, true)
    w << "data" # stays unread: a persistent watch would fire every round
    assert_equal [:reader], keys_until_marker
  end

  def test_oneshot_key_can_be_watched_again_after_it_fired
    r, w = pipe
    w << "data"
    3.times do
      @loop.watch_io(:reader, r, false, true)
      watchdog
      assert_equal :reader, @loop.next_event
    end
  end

  def test_persistent_read_watch_fires_every_round_until_unwatched
    r, w = pipe
    @loop.watch_io(:reader, r, false, false)
    w << "data"
    watchdog
    3.times { assert_equal :reader, @loop.next_event }
    @loop.unwatch(:reader)
    # An event already in the current batch may still come (as in Ever); none after it.
    keys = keys_until_marker
    assert_operator keys.size, :<=, 1
    assert_empty keys - [:reader]
    assert_empty keys_until_marker(:marker2)
  end

  def test_write_watch
    r, w = pipe
    @loop.watch_io(:writer, w, true, true)
    @loop.watch_io(:reader, r, false, true) # nothing written: must not fire
    watchdog
    assert_equal :writer, @loop.next_event
    assert_empty keys_until_marker
    @loop.unwatch(:reader)
  end

  def test_read_and_write_watches_on_one_io
    a, b = UNIXSocket.pair
    @pipes << [a, b]
    @loop.watch_io(:a_read, a, false, true)
    @loop.watch_io(:a_write, a, true, true)
    watchdog
    assert_equal :a_write, @loop.next_event
    b << "x"
    assert_equal :a_read, @loop.next_event
  end

  def test_oneshot_timer
    @loop.watch_timer(:once, 0.01, 0)
    watchdog
    assert_equal :once, @loop.next_event
    assert_empty keys_until_marker
  end

  def test_repeating_timer
    @loop.watch_timer(:tick, 0.005, 0.005)
    watchdog
    ticks = 0
    @loop.each do |key|
      ticks += 1 if key == :tick
      @loop.stop if ticks == 3
    end
    assert_equal 3, ticks
    @loop.unwatch(:tick)
  end

  def test_unwatched_timer_does_not_fire
    @loop.watch_timer(:never, 0.01, 0)
    @loop.unwatch(:never)
    assert_empty keys_until_marker(:marker, 0.1)
  end

  def test_unwatch_of_an_unknown_key_is_a_no_op
    assert_same @loop, @loop.unwatch(:unknown)
    @loop.watch_timer(:t, 0.001, 0)
    @loop.unwatch(:t)
    @loop.unwatch(:t)
  end

  def test_duplicate_key_raises
    r, = pipe
    @loop.watch_io(:k, r, false, false)
    assert_raises(RuntimeError) { @loop.watch_timer(:k, 1, 0) }
    assert_raises(RuntimeError) { @loop.watch_io(:k, r, true, false) }
    @loop.unwatch(:k)
    @loop.watch_timer(:k, 1, 0) # free again
  end

  def test_second_key_on_the_same_fd_and_direction_raises
    r, = pipe
    @loop.watch_io(:first, r, false, false)
    assert_raises(RuntimeError) { @loop.watch_io(:second, r, false, false) }
  end

  def test_emit_from_another_thread_wakes_a_blocked_next_event
    watchdog
    in_thread do
      sleep 0.05
      @loop.emit(:from_thread)
    end
    assert_equal :from_thread, @loop.next_event
  end

  def test_emitted_keys_come_before_readiness_of_the_same_round
    r, w = pipe
    @loop.watch_io(:reader, r, false, true)
    in_thread do
      @loop.emit(:first)
      w << "x"
    end.join
    watchdog
    assert_equal [:first, :reader], [@loop.next_event, @loop.next_event]
  end

  def test_many_emitters
    emitters = 4
    per_thread = 200
    emitters.times { |t| in_thread { per_thread.times { |i| @loop.emit([t, i]) } } }
    watchdog
    got = Array.new(emitters * per_thread) { @loop.next_event }
    assert_equal emitters * per_thread, got.compact.uniq.size
    emitters.times { |t| assert_equal (0...per_thread).to_a, got.select { |k| k[0] == t }.map(&:last) }
  end

  def test_stop_from_another_thread_ends_each
    r, w = pipe
    @loop.watch_io(:reader, r, false, true)
    in_thread do
      sleep 0.05
      @loop.stop
    end
    watchdog
    seen = []
    @loop.each { |key| seen << key }
    assert_empty seen
    assert_nil @loop.next_event # a stopped loop stays stopped
    w << "x"
  end

  def test_emit_stop_ends_each
    [1, 2, 3].each { |k| @loop.emit(k) }
    seen = []
    @loop.each do |key|
      seen << key
      @loop.emit(:stop) if key == 3
    end
    assert_equal [1, 2, 3], seen
  end

  def test_signal_from_another_thread_returns_nil
    r, = pipe
    @loop.watch_io(:reader, r, false, true)
    in_thread do
      sleep 0.05
      @loop.signal
    end
    watchdog
    assert_nil @loop.next_event
  end

  # Ruby runs an unblocking function that is not declared async-signal-safe, on a process with
  # one living thread, by starting a helper thread for every blocking call (rb_nogvl); a loop
  # that did so would start and kill a thread at every poll. The poll's is declared safe, so
  # polling on the only thread starts none, and a trapped signal still wakes it (the servers stop
  # this way on SIGTERM). Minitest keeps threads of its own, so both run in a child Ruby where the
  # polling thread is the only one (the script checks that, and bounds its waits by a timer watch,
  # not a watchdog thread).
  ONLY_THREAD_SCRIPT = <<~'RUBY'
    require "ever"
    backend = ARGV[0].to_sym
    abort "threads: #{Thread.list.size}" unless Thread.list.size == 1
    loop = Ever::Loop.new(backend)
    r, w = IO.pipe
    w << "data"
    loop.watch_io(:reader, r, false, false)
    loop.watch_timer(:watchdog, 10, 0)
    started = 0
    trace = TracePoint.new(:thread_begin) { started += 1 }
    trace.enable { 200.times { abort "not the reader" unless loop.next_event == :reader } }
    puts "started #{started}"
    loop.unwatch(:reader)
    trapped = false
    trap("USR1") do
      trapped = true
      loop.stop
    end
    child = spawn("sleep 0.1; kill -USR1 #{Process.pid}")
    keys = []
    loop.each { |key| keys << key }
    Process.wait(child)
    puts "trapped #{trapped} watchdog #{keys.include?(:watchdog)}"
  RUBY

  def test_polling_on_the_only_thread_starts_no_thread_and_a_signal_wakes_it
    ext_dir = File.dirname($LOADED_FEATURES.find { |f| f.end_with?("/ever.so") })
    out = IO.popen([RbConfig.ruby, "-I", ext_dir, "-e", ONLY_THREAD_SCRIPT, self.class::BACKEND.to_s],
                   err: %i[child out], &:read)
    assert_predicate $?, :success?, out
    assert_includes out, "started 0", "threads started while polling"
    assert_includes out, "trapped true watchdog false", "the trapped signal did not wake the poll"
  end

  def test_a_thread_blocked_in_next_event_can_be_killed_and_raised
    poller = in_thread do
      Thread.current.report_on_exception = false
      @loop.next_event
    end
    sleep 0.05
    poller.raise(RuntimeError, "woken")
    assert_raises(RuntimeError) { poller.join(WATCHDOG_S) }
    # The loop is bound to the dead thread now; a fresh loop shows Thread#kill.
    loop2 = Ever::Loop.new(self.class::BACKEND)
    killed = in_thread { loop2.next_event }
    sleep 0.05
    killed.kill
    refute_nil killed.join(WATCHDOG_S), "Thread#kill did not wake the poll"
  end

  # Waits until thread is blocked (in the poll, or sleeping); fails if it ends or never blocks.
  def wait_until_blocked(thread)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + WATCHDOG_S
    until thread.status == "sleep"
      flunk "the thread ended (#{thread.value.inspect}) instead of blocking" unless thread.alive?
      flunk "the thread never blocked" if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
      Thread.pass
    end
  end

  def test_loop_methods_refuse_other_threads_while_one_polls
    r, = pipe
    watchdog
    in_thread { @loop.next_event }
    wait_until_blocked(@threads.last)
    sleep 0.05 # let it reach the poll
    assert_raises(RuntimeError) { @loop.watch_io(:k, r, false, true) }
    assert_raises(RuntimeError) { @loop.watch_timer(:t, 1, 0) }
    assert_raises(RuntimeError) { @loop.next_event }
    @loop.emit(:done) # allowed from any thread
    assert_equal :done, @threads.last.value
  end

  # A poll entered while another thread wants the GVL (a time-slice interrupt pending) is no
  # event: next_event handles the interrupt and polls, it does not return a spurious nil. Two
  # threads handing the GVL round keep setting that interrupt; before the fix this returned 10 to
  # 35 nils among about 40,000 keys a second, on both backends.
  def test_no_spurious_nil_while_other_threads_want_the_gvl
    run_s = 1.0
    watchdog
    give_up = Process.clock_gettime(Process::CLOCK_MONOTONIC) + WATCHDOG_S
    poller = in_thread do
      keys = []
      while (key = @loop.next_event) != :done
        keys << key
        break if key.nil? && Process.clock_gettime(Process::CLOCK_MONOTONIC) > give_up # stopped
      end
      keys
    end
    busy = Array.new(2) { in_thread { loop { Thread.pass } } } # hand the GVL round all the time
    emitted = 0
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + run_s
    while Process.clock_gettime(Process::CLOCK_MONOTONIC) < deadline
      @loop.emit(emitted)
      emitted += 1
      Thread.pass
    end
    @loop.emit(:done)
    keys = poller.value
    busy.each(&:kill)
    assert_operator emitted, :>=, 5, "too few rounds to test anything"
    assert_equal (0...emitted).to_a, keys
  end

  def test_an_io_closed_while_watched_is_no_crash
    r, = pipe
    old_fd = r.fileno
    @loop.watch_io(:old, r, false, false)
    r.close # misuse: closed before unwatch
    r2, w2 = pipe
    if r2.fileno == old_fd # the number is reused: the old key still holds it
      assert_raises(RuntimeError) { @loop.watch_io(:new, r2, false, true) }
    end
    @loop.unwatch(:old)
    @loop.watch_io(:new, r2, false, true)
    w2 << "x"
    keys = keys_until_marker
    assert_includes keys, :new
    assert_empty keys - [:new, :old]
  end

  def test_a_regular_file
    File.open(__FILE__) do |file|
      if self.class::BACKEND == :epoll
        assert_raises(Errno::EPERM) { @loop.watch_io(:file, file, false, true) } # epoll refuses files
      else
        @loop.watch_io(:file, file, false, true) # libev: always ready
        watchdog
        assert_equal :file, @loop.next_event
      end
    end
  end

  BAD_ARGUMENTS = [
    # label, exception, call
    ["watch_io of a non-IO", TypeError, ->(l) { l.watch_io(:k, 42, false, true) }],
    ["watch_io of nil", TypeError, ->(l) { l.watch_io(:k, nil, false, true) }],
    ["watch_io of a closed IO", IOError, ->(l) { IO.pipe.each(&:close).then { |r, _| l.watch_io(:k, r, false, true) } }],
    ["watch_timer without a number", TypeError, ->(l) { l.watch_timer(:k, nil, 0) }],
    ["watch_timer with a string", TypeError, ->(l) { l.watch_timer(:k, "1", 0) }],
    ["watch_timer with a negative timeout", ArgumentError, ->(l) { l.watch_timer(:k, -1, 0) }],
    ["watch_timer with a negative interval", ArgumentError, ->(l) { l.watch_timer(:k, 1, -0.5) }],
    ["watch_timer with NaN", ArgumentError, ->(l) { l.watch_timer(:k, Float::NAN, 0) }],
    ["watch_timer with infinity", ArgumentError, ->(l) { l.watch_timer(:k, Float::INFINITY, 0) }],
    ["watch_io with too few arguments", ArgumentError, ->(l) { l.watch_io(:k, $stdin) }],
    ["each without a block", LocalJumpError, ->(l) { l.each }],
    ["an unknown backend", ArgumentError, ->(_) { Ever::Loop.new(:kqueue) }],
    ["a backend that is not a name", TypeError, ->(_) { Ever::Loop.new(7) }],
    ["an uninitialized loop", RuntimeError, ->(_) { Ever::Loop.allocate.next_event }],
    ["initialize twice", RuntimeError, ->(l) { l.send(:initialize) }],
  ].freeze

  def test_bad_arguments_raise_and_leave_the_loop_usable
    BAD_ARGUMENTS.each do |label, exception, call|
      assert_raises(exception, label) { call.call(@loop) }
    end
    @loop.watch_timer(:k, 0.001, 0) # no bad call left a watch behind under :k
    watchdog
    assert_equal :k, @loop.next_event
  end
end

class EverLoopLibevTest < Minitest::Test
  BACKEND = :libev
  include EverLoopTests
end

class EverLoopEpollTest < Minitest::Test
  BACKEND = :epoll
  include EverLoopTests
end

class EverLoopDefaultTest < Minitest::Test
  def test_default_backend_works
    loop = Ever::Loop.new
    loop.emit(:x)
    assert_equal :x, loop.next_event
  end
end
