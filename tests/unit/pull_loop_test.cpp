// Pull loop tests: the semantics Ever's own tests check (test/test_loop.rb), plus the contracts
// this implementation adds (batches, duplicate keys, thread safety, no steady-state allocation),
// each run against both backends.
//
// Timing bounds are generous for a loaded 2-core machine: lower bounds are what the contract
// promises (a timer never fires early), upper bounds only catch a timer that never fires. Every
// loop test runs under a watchdog that stops the loop after kWatchdog, so a lost wake-up fails
// the test instead of hanging it.
//
// This file replaces global operator new with a counting version (see the allocation test); the
// count is per thread and only while a test asks for it, so nothing else is affected.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <ostream>
#include <random>
#include <semaphore>
#include <stop_token>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "backends/loop/pull_loop.h"
#include "backends/loop/pull_loop_detail.h"

// ---- allocation counting ------------------------------------------------------------------

namespace {
thread_local bool t_count_allocations = false;
thread_local std::size_t t_allocations = 0;

void* counted_alloc(std::size_t bytes, std::size_t alignment) {
  if (t_count_allocations) ++t_allocations;
  if (bytes == 0) bytes = 1;
  void* p = alignment <= alignof(std::max_align_t)
                ? std::malloc(bytes)
                : std::aligned_alloc(alignment, (bytes + alignment - 1) / alignment * alignment);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
}  // namespace

// GCC cannot see that these pair with the malloc above and flags free() on memory from
// operator new; here the pairing is exactly right.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t bytes) { return counted_alloc(bytes, alignof(std::max_align_t)); }
void* operator new(std::size_t bytes, std::align_val_t al) {
  return counted_alloc(bytes, static_cast<std::size_t>(al));
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace cb::loop {

// Names the backend in gtest output and ctest test names (found by argument-dependent lookup).
void PrintTo(Backend backend, std::ostream* os) { *os << to_string(backend); }

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using std::chrono::microseconds;

// Long enough that no healthy test comes near it on a loaded machine, short enough that a hang
// is reported well inside ctest's 120 s timeout.
constexpr auto kWatchdog = 10s;
// A quiet interval that proves an event did not happen: long next to a pipe or emit round trip
// (microseconds), short enough to keep the suite fast.
constexpr auto kQuiet = 30ms;

// ---- helpers -----------------------------------------------------------------------------------

// A non-blocking pipe, closed on destruction.
struct Pipe {
  int read_fd = -1;
  int write_fd = -1;
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) std::abort();
    read_fd = fds[0];
    write_fd = fds[1];
  }
  ~Pipe() {
    close_read();
    close_write();
  }
  void write_byte() const { ASSERT_EQ(::write(write_fd, "x", 1), 1); }
  void close_read() {
    if (read_fd >= 0) ::close(read_fd);
    read_fd = -1;
  }
  void close_write() {
    if (write_fd >= 0) ::close(write_fd);
    write_fd = -1;
  }
};

// A connected non-blocking Unix socket pair, closed on destruction.
struct SocketPair {
  int a = -1;
  int b = -1;
  SocketPair() {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) std::abort();
    a = fds[0];
    b = fds[1];
  }
  ~SocketPair() {
    ::close(a);
    ::close(b);
  }
};

std::string backend_name(const ::testing::TestParamInfo<Backend>& info) {
  return std::string(to_string(info.param));
}

class PullLoopTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    loop_ = make_pull_loop(GetParam());
    ASSERT_NE(loop_, nullptr);
    watchdog_ = std::jthread([this](std::stop_token stop) {
      std::mutex m;
      std::condition_variable_any cv;
      std::unique_lock lock(m);
      if (!cv.wait_for(lock, stop, kWatchdog, [] { return false; }) && !stop.stop_requested()) {
        loop_->stop();  // the test is stuck: make its next_event/each return
      }
    });
  }
  void TearDown() override {
    watchdog_.request_stop();
    if (watchdog_.joinable()) watchdog_.join();
  }

  // Returns the next key, skipping nullopt from spurious reasons; nullopt only once stopped.
  std::optional<Key> next_key() {
    for (;;) {
      if (std::optional<Key> key = loop_->next_event()) return key;
      if (loop_->stopped()) return std::nullopt;
    }
  }

  // Returns every key up to (not including) `marker`, a timer the caller set as an end mark.
  std::vector<Key> keys_until(Key marker) {
    std::vector<Key> seen;
    for (;;) {
      std::optional<Key> key = next_key();
      if (!key || *key == marker) return seen;
      seen.push_back(*key);
    }
  }

  // Returns the keys seen during a quiet interval of kQuiet (ends with a timer under `marker`).
  std::vector<Key> keys_during_quiet_interval(Key marker = 0xFFFF'0000) {
    EXPECT_EQ(loop_->watch_timer(marker, kQuiet, 0us), WatchStatus::ok);
    return keys_until(marker);
  }

  std::unique_ptr<PullLoop> loop_;
  std::jthread watchdog_;
};

INSTANTIATE_TEST_SUITE_P(Backends, PullLoopTest, ::testing::Values(Backend::libev, Backend::epoll),
                         backend_name);

// ---- Ever's own tests --------------------------------------------------------------------------

// Ever test_no_watchers: emitted keys are events with no watcher at all, in emit order.
TEST_P(PullLoopTest, EmitWithNoWatchersIsSeenInOrder) {
  loop_->emit(1);
  loop_->emit(2);
  loop_->emit(3);
  std::vector<Key> seen;
  loop_->each([&](Key key) {
    seen.push_back(key);
    if (key == 3) loop_->stop();
  });
  EXPECT_EQ(seen, (std::vector<Key>{1, 2, 3}));
}

// Ever test_io: a one-shot watch on a readable pipe fires once; it is then gone, does not fire
// again on more data, and fires again once re-watched.
TEST_P(PullLoopTest, OneShotPipeWatchFiresOnce) {
  Pipe pipe;
  constexpr Key kPipe = 42;
  ASSERT_EQ(loop_->watch_io(kPipe, pipe.read_fd, Interest::readable, true), WatchStatus::ok);
  pipe.write_byte();
  EXPECT_EQ(next_key(), kPipe);
  EXPECT_EQ(loop_->watcher_count(), 0u);

  pipe.write_byte();
  EXPECT_EQ(keys_during_quiet_interval(), std::vector<Key>{}) << "a fired one-shot watch fired again";

  ASSERT_EQ(loop_->watch_io(kPipe, pipe.read_fd, Interest::readable, true), WatchStatus::ok);
  EXPECT_EQ(next_key(), kPipe) << "re-watching a fired key did not re-arm it";
}

// Ever test_cross_thread_signalling: signal() from another thread makes a blocked next_event
// return nullopt.
TEST_P(PullLoopTest, SignalFromAnotherThreadReturnsNullopt) {
  Pipe pipe;  // watched, never written: the poll would block forever
  ASSERT_EQ(loop_->watch_io(1, pipe.read_fd, Interest::readable, true), WatchStatus::ok);
  std::jthread signaller([&] {
    std::this_thread::sleep_for(20ms);  // let the loop block first (not required to pass)
    loop_->signal();
  });
  EXPECT_EQ(loop_->next_event(), std::nullopt);
  EXPECT_FALSE(loop_->stopped()) << "the watchdog fired: signal() did not wake the loop";
}

// Ever test_emit: an emit from another thread wakes the loop and is seen; the readiness caused
// after it comes after it.
TEST_P(PullLoopTest, EmitFromAnotherThreadIsSeen) {
  Pipe pipe;
  constexpr Key kFoo = 1;
  constexpr Key kBaz = 2;
  ASSERT_EQ(loop_->watch_io(kFoo, pipe.read_fd, Interest::readable, true), WatchStatus::ok);
  std::jthread emitter([&] {
    std::this_thread::sleep_for(10ms);  // let the loop block first (not required to pass)
    loop_->emit(kBaz);
    pipe.write_byte();
  });
  EXPECT_EQ(next_key(), kBaz);
  EXPECT_EQ(next_key(), kFoo);
}

// Ever test_timer_oneshot: a 10 ms one-shot timer fires, not early, and is then gone.
TEST_P(PullLoopTest, OneShotTimerFiresWithinTolerance) {
  const auto t0 = Clock::now();
  ASSERT_EQ(loop_->watch_timer(7, 10ms, 0us), WatchStatus::ok);
  EXPECT_EQ(next_key(), Key{7});
  const auto elapsed = Clock::now() - t0;
  EXPECT_GE(elapsed, 9ms);
  EXPECT_LE(elapsed, 500ms);
  EXPECT_EQ(loop_->watcher_count(), 0u);
}

// Ever test_timer_recurring: a 10 ms repeating timer ticks, spaced by its interval.
TEST_P(PullLoopTest, RepeatingTimerTicks) {
  constexpr int kTicks = 3;
  const auto t0 = Clock::now();
  ASSERT_EQ(loop_->watch_timer(7, 10ms, 10ms), WatchStatus::ok);
  std::vector<Clock::time_point> ticks;
  loop_->each([&](Key key) {
    EXPECT_EQ(key, Key{7});
    ticks.push_back(Clock::now());
    if (ticks.size() == kTicks) loop_->stop();
  });
  ASSERT_EQ(ticks.size(), std::size_t{kTicks});
  const auto elapsed = ticks.back() - t0;
  EXPECT_GE(elapsed, 27ms) << "three 10 ms ticks came early";  // ms-rounded poll timeouts
  EXPECT_LE(elapsed, 1500ms);
  EXPECT_EQ(loop_->watcher_count(), 1u) << "a repeating timer must stay active";
}

// ---- I/O watchers ------------------------------------------------------------------------------

// A persistent (level-triggered) watch fires every round while the fd stays readable, and
// unwatch silences it.
TEST_P(PullLoopTest, PersistentWatchFiresEachRoundUntilUnwatched) {
  Pipe pipe;
  ASSERT_EQ(loop_->watch_io(5, pipe.read_fd, Interest::readable, false), WatchStatus::ok);
  pipe.write_byte();
  EXPECT_EQ(next_key(), Key{5});
  EXPECT_EQ(next_key(), Key{5}) << "level-triggered readiness must be reported again";
  EXPECT_EQ(loop_->watcher_count(), 1u);
  EXPECT_TRUE(loop_->unwatch(5));
  EXPECT_FALSE(loop_->unwatch(5));
  EXPECT_EQ(keys_during_quiet_interval(), std::vector<Key>{}) << "an unwatched fd fired";
}

// A writable watch on a socket with an empty send buffer fires.
TEST_P(PullLoopTest, WritableWatchFires) {
  SocketPair sockets;
  ASSERT_EQ(loop_->watch_io(9, sockets.a, Interest::writable, true), WatchStatus::ok);
  EXPECT_EQ(next_key(), Key{9});
}

// Readable and writable watches on one fd under two keys fire independently: the writable one
// fires at once, the readable one stays armed until data arrives (for epoll, the survivor of a
// one-shot registration is re-armed after its sibling fires).
TEST_P(PullLoopTest, ReadAndWriteWatchesOnOneFdAreIndependent) {
  SocketPair sockets;
  constexpr Key kRead = 1;
  constexpr Key kWrite = 2;
  ASSERT_EQ(loop_->watch_io(kRead, sockets.a, Interest::readable, true), WatchStatus::ok);
  ASSERT_EQ(loop_->watch_io(kWrite, sockets.a, Interest::writable, true), WatchStatus::ok);
  EXPECT_EQ(next_key(), kWrite);
  EXPECT_EQ(keys_during_quiet_interval(), std::vector<Key>{});
  ASSERT_EQ(::write(sockets.b, "x", 1), 1);
  EXPECT_EQ(next_key(), kRead);
  EXPECT_EQ(loop_->watcher_count(), 0u);
}

// A one-shot watch sharing its fd with a persistent one: the one-shot fires once and is retired
// (for epoll, by dropping its interest from a level-triggered registration) while the persistent
// one keeps firing.
TEST_P(PullLoopTest, OneShotAndPersistentWatchesShareAnFd) {
  SocketPair sockets;
  constexpr Key kRead = 1;   // persistent
  constexpr Key kWrite = 2;  // one-shot
  ASSERT_EQ(loop_->watch_io(kRead, sockets.a, Interest::readable, false), WatchStatus::ok);
  ASSERT_EQ(loop_->watch_io(kWrite, sockets.a, Interest::writable, true), WatchStatus::ok);
  EXPECT_EQ(next_key(), kWrite);
  EXPECT_EQ(keys_during_quiet_interval(), std::vector<Key>{}) << "a fired one-shot fired again";
  ASSERT_EQ(::write(sockets.b, "x", 1), 1);
  EXPECT_EQ(next_key(), kRead);
  EXPECT_EQ(next_key(), kRead) << "the persistent watch must keep firing while readable";
  EXPECT_EQ(loop_->watcher_count(), 1u);
}

// A hang-up wakes a readable watch (the application then reads EOF).
TEST_P(PullLoopTest, HangUpWakesReadableWatch) {
  Pipe pipe;
  ASSERT_EQ(loop_->watch_io(3, pipe.read_fd, Interest::readable, true), WatchStatus::ok);
  pipe.close_write();
  EXPECT_EQ(next_key(), Key{3});
}

// A closed fd: epoll says so at watch time. (For libev it is a contract violation that trips an
// assertion inside libev; see watch_io.)
TEST(PullLoopEpoll, ClosedFdIsRefused) {
  std::unique_ptr<PullLoop> loop = make_pull_loop(Backend::epoll);
  int closed_fd;
  {
    Pipe pipe;
    closed_fd = pipe.read_fd;
  }
  const WatchStatus status = loop->watch_io(4, closed_fd, Interest::readable, false);
  const int watch_errno = errno;
  EXPECT_EQ(status, WatchStatus::system_error);
  EXPECT_EQ(watch_errno, EBADF);
  EXPECT_EQ(loop->watcher_count(), 0u);
}

// A regular file: epoll refuses it (EPERM); libev fakes readiness, so a one-shot watch fires.
TEST_P(PullLoopTest, RegularFileIsRefusedByEpollAndAlwaysReadyOnLibev) {
  const int fd = ::open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  const WatchStatus status = loop_->watch_io(4, fd, Interest::readable, true);
  const int watch_errno = errno;
  if (GetParam() == Backend::epoll) {
    EXPECT_EQ(status, WatchStatus::system_error);
    EXPECT_EQ(watch_errno, EPERM);
  } else {
    EXPECT_EQ(status, WatchStatus::ok);
    EXPECT_EQ(next_key(), Key{4});
  }
  EXPECT_EQ(loop_->watcher_count(), 0u);
  ::close(fd);
}

// ---- timers ------------------------------------------------------------------------------------

// Timers fire in deadline order, whatever the order they were set in.
TEST_P(PullLoopTest, TimersFireInDeadlineOrder) {
  struct Case {
    Key key;
    std::chrono::milliseconds after;
  };
  const Case cases[] = {{30, 30ms}, {10, 10ms}, {40, 40ms}, {20, 20ms}};
  for (const Case& c : cases) ASSERT_EQ(loop_->watch_timer(c.key, c.after, 0us), WatchStatus::ok);
  std::vector<Key> seen;
  while (seen.size() < std::size(cases)) {
    std::optional<Key> key = next_key();
    ASSERT_TRUE(key.has_value());
    seen.push_back(*key);
  }
  EXPECT_EQ(seen, (std::vector<Key>{10, 20, 30, 40}));
}

// An unwatched timer never fires, and a key re-watched as a timer keeps only its new deadline.
TEST_P(PullLoopTest, UnwatchedTimerNeverFiresAndRewatchTakesNewDeadline) {
  constexpr Key kGone = 1;
  constexpr Key kMoved = 2;
  constexpr Key kMarker = 3;
  ASSERT_EQ(loop_->watch_timer(kGone, 10ms, 0us), WatchStatus::ok);
  ASSERT_EQ(loop_->watch_timer(kMoved, 10ms, 0us), WatchStatus::ok);
  EXPECT_TRUE(loop_->unwatch(kGone));
  EXPECT_TRUE(loop_->unwatch(kMoved));
  ASSERT_EQ(loop_->watch_timer(kMoved, 60ms, 0us), WatchStatus::ok);
  ASSERT_EQ(loop_->watch_timer(kMarker, 30ms, 0us), WatchStatus::ok);
  EXPECT_EQ(next_key(), kMarker) << "an unwatched timer fired, or a re-watch kept its old deadline";
  EXPECT_EQ(next_key(), kMoved);
  EXPECT_EQ(loop_->watcher_count(), 0u);
}

// A repeating timer stops ticking when unwatched.
TEST_P(PullLoopTest, UnwatchStopsRepeatingTimer) {
  ASSERT_EQ(loop_->watch_timer(8, 5ms, 5ms), WatchStatus::ok);
  EXPECT_EQ(next_key(), Key{8});
  EXPECT_TRUE(loop_->unwatch(8));
  const std::vector<Key> quiet = keys_during_quiet_interval();
  EXPECT_EQ(std::count(quiet.begin(), quiet.end(), Key{8}), 0);
}

// Many timers set and unwatched (the epoll backend's lazy heap deletion and compaction) leave
// the live ones firing correctly.
TEST_P(PullLoopTest, TimerChurnKeepsLiveTimers) {
  constexpr Key kChurned = 1000;  // keys kChurned .. kChurned + kChurn - 1
  constexpr int kChurn = 500;     // well past the epoll heap's compaction threshold
  for (int i = 0; i < kChurn; ++i) {
    ASSERT_EQ(loop_->watch_timer(kChurned + i, 1s, 0us), WatchStatus::ok);
    ASSERT_TRUE(loop_->unwatch(kChurned + i));
  }
  ASSERT_EQ(loop_->watch_timer(1, 5ms, 0us), WatchStatus::ok);
  EXPECT_EQ(next_key(), Key{1});
  EXPECT_EQ(loop_->watcher_count(), 0u);
}

// ---- watch status ------------------------------------------------------------------------------

// Each case is a sequence of operations on a fresh loop; the last one's status is checked.
TEST_P(PullLoopTest, WatchStatusTable) {
  Pipe pipe;
  enum class Op { io_read, io_read_other_key, io_write, timer, unwatch, bad_fd, bad_after, bad_repeat };
  struct Case {
    const char* label;
    std::vector<Op> ops;  // all on key 1 except io_read_other_key (key 2)
    WatchStatus last;
  };
  const Case cases[] = {
      {"first watch", {Op::io_read}, WatchStatus::ok},
      {"io then io, same key", {Op::io_read, Op::io_write}, WatchStatus::duplicate_key},
      {"io then timer, same key", {Op::io_read, Op::timer}, WatchStatus::duplicate_key},
      {"timer then io, same key", {Op::timer, Op::io_read}, WatchStatus::duplicate_key},
      {"timer then timer, same key", {Op::timer, Op::timer}, WatchStatus::duplicate_key},
      {"watch, unwatch, watch", {Op::io_read, Op::unwatch, Op::io_read}, WatchStatus::ok},
      {"timer, unwatch, io", {Op::timer, Op::unwatch, Op::io_read}, WatchStatus::ok},
      {"same fd and interest, other key", {Op::io_read, Op::io_read_other_key}, WatchStatus::fd_busy},
      {"negative fd", {Op::bad_fd}, WatchStatus::invalid_argument},
      {"negative after", {Op::bad_after}, WatchStatus::invalid_argument},
      {"negative repeat", {Op::bad_repeat}, WatchStatus::invalid_argument},
  };
  for (const Case& c : cases) {
    std::unique_ptr<PullLoop> loop = make_pull_loop(GetParam());
    WatchStatus status = WatchStatus::ok;
    for (Op op : c.ops) {
      switch (op) {
        case Op::io_read: status = loop->watch_io(1, pipe.read_fd, Interest::readable, true); break;
        case Op::io_read_other_key: status = loop->watch_io(2, pipe.read_fd, Interest::readable, true); break;
        case Op::io_write: status = loop->watch_io(1, pipe.write_fd, Interest::writable, true); break;
        case Op::timer: status = loop->watch_timer(1, 1s, 0us); break;
        case Op::unwatch: status = loop->unwatch(1) ? WatchStatus::ok : WatchStatus::invalid_argument; break;
        case Op::bad_fd: status = loop->watch_io(1, -1, Interest::readable, true); break;
        case Op::bad_after: status = loop->watch_timer(1, -1us, 0us); break;
        case Op::bad_repeat: status = loop->watch_timer(1, 1s, -1us); break;
      }
    }
    EXPECT_EQ(to_string(status), to_string(c.last)) << c.label;
  }
}

// A key is free again as soon as its one-shot watcher fires.
TEST_P(PullLoopTest, FiredOneShotKeyIsFree) {
  ASSERT_EQ(loop_->watch_timer(1, 0us, 0us), WatchStatus::ok);
  ASSERT_EQ(loop_->watch_timer(1, 0us, 0us), WatchStatus::duplicate_key);
  EXPECT_EQ(next_key(), Key{1});
  EXPECT_EQ(loop_->watch_timer(1, 0us, 0us), WatchStatus::ok);
}

// ---- batches, stop, threads --------------------------------------------------------------------

// Keys emitted while a batch is handed out (from the loop thread or another) go to the next
// batch, i.e. the next poll round.
TEST_P(PullLoopTest, EmitsDuringBatchGoToNextBatch) {
  loop_->emit(1);
  loop_->emit(2);
  EXPECT_EQ(next_key(), Key{1});
  const std::uint64_t first_round = loop_->poll_rounds();
  loop_->emit(3);                                  // loop thread
  std::jthread([&] { loop_->emit(4); }).join();   // another thread
  EXPECT_EQ(next_key(), Key{2});
  EXPECT_EQ(loop_->poll_rounds(), first_round) << "key 2 should come from the first batch";
  EXPECT_EQ(next_key(), Key{4});  // cross-thread emits first, then the loop thread's own
  EXPECT_EQ(next_key(), Key{3});
  EXPECT_EQ(loop_->poll_rounds(), first_round + 1) << "keys 3 and 4 should form the next batch";
}

// stop() from another thread ends a blocked each().
// RoundOrder: with a readable fd watched persistently and a key emitted, the next round polls
// under poll_every_round (the emitted key and the readiness come in one batch) and does not
// under emits_first (Ever's order: the emitted key alone, then a polling round for the fd).
TEST_P(PullLoopTest, RoundOrderDecidesWhetherARoundWithEmitsPolls) {
  struct Case {
    RoundOrder order;
    bool polls_with_emits;
    std::vector<Key> first_batch;
  };
  constexpr Key kPipe = 7;
  constexpr Key kEmitted = 9;
  const Case cases[] = {
      {RoundOrder::poll_every_round, true, {kEmitted, kPipe}},
      {RoundOrder::emits_first, false, {kEmitted}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.order == RoundOrder::emits_first ? "emits_first" : "poll_every_round");
    Pipe pipe;  // outlives the loop that watches it
    std::unique_ptr<PullLoop> loop = make_pull_loop(GetParam());
    loop->set_round_order(c.order);
    ASSERT_EQ(loop->watch_io(kPipe, pipe.read_fd, Interest::readable, false), WatchStatus::ok);
    pipe.write_byte();
    loop->emit(kEmitted);
    EXPECT_EQ(loop->next_round_polls(), c.polls_with_emits);
    std::vector<Key> batch{*loop->next_event()};
    while (!loop->batch_exhausted()) batch.push_back(*loop->next_event());
    EXPECT_EQ(batch, c.first_batch);
    EXPECT_EQ(loop->poll_rounds(), c.polls_with_emits ? 1u : 0u);
    // Nothing emitted now: every order polls, and the fd is reported.
    EXPECT_TRUE(loop->next_round_polls());
    EXPECT_EQ(loop->next_event(), std::optional<Key>{kPipe});
    EXPECT_EQ(loop->poll_rounds(), c.polls_with_emits ? 2u : 1u);
  }
}

TEST_P(PullLoopTest, StopFromAnotherThreadEndsEach) {
  Pipe pipe;  // watched, never written
  ASSERT_EQ(loop_->watch_io(1, pipe.read_fd, Interest::readable, false), WatchStatus::ok);
  const auto t0 = Clock::now();
  std::jthread stopper([&] {
    std::this_thread::sleep_for(20ms);
    loop_->stop();
  });
  int calls = 0;
  loop_->each([&](Key) { ++calls; });
  EXPECT_EQ(calls, 0);
  EXPECT_TRUE(loop_->stopped());
  EXPECT_LT(Clock::now() - t0, kWatchdog / 2) << "each() ended by the watchdog, not by stop()";
  EXPECT_EQ(loop_->next_event(), std::nullopt) << "a stopped loop must not poll";
}

// stop() inside each() ends it before the next event; the rest of the batch stays available.
TEST_P(PullLoopTest, StopInsideEachLeavesRestOfBatch) {
  for (Key k = 1; k <= 3; ++k) loop_->emit(k);
  std::vector<Key> seen;
  loop_->each([&](Key key) {
    seen.push_back(key);
    if (key == 2) loop_->stop();
  });
  EXPECT_EQ(seen, (std::vector<Key>{1, 2}));
  EXPECT_EQ(loop_->next_event(), Key{3});
  EXPECT_EQ(loop_->next_event(), std::nullopt);
}

// Emits from several threads at once: every key arrives exactly once, each thread's in order.
TEST_P(PullLoopTest, ConcurrentEmitsArriveOnceAndInPerThreadOrder) {
  constexpr int kThreads = 4;
  constexpr Key kPerThread = 20000;
  std::vector<std::jthread> emitters;
  for (int t = 0; t < kThreads; ++t) {
    emitters.emplace_back([this, t] {
      for (Key i = 0; i < kPerThread; ++i) loop_->emit((Key{static_cast<unsigned>(t)} << 32) | i);
    });
  }
  std::vector<Key> next_expected(kThreads, 0);
  Key received = 0;
  bool in_order = true;
  while (received < kThreads * kPerThread) {
    std::optional<Key> key = next_key();
    ASSERT_TRUE(key.has_value()) << "stopped by the watchdog after " << received << " keys";
    const auto t = static_cast<std::size_t>(*key >> 32);
    ASSERT_LT(t, std::size_t{kThreads});
    in_order = in_order && (*key & 0xFFFF'FFFF) == next_expected[t];
    ++next_expected[t];
    ++received;
  }
  EXPECT_TRUE(in_order);
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(next_expected[t], kPerThread);
}

// Ping-pong with another thread, one emit at a time: each emit must wake a loop that is blocked
// or about to block. A lost wake-up stalls until the watchdog.
TEST_P(PullLoopTest, CrossThreadPingPongLosesNoWakeUp) {
  constexpr Key kRounds = 5000;
  std::binary_semaphore your_turn{0};
  std::jthread partner([&](std::stop_token stop) {
    for (Key i = 0; i < kRounds && !stop.stop_requested(); ++i) {
      loop_->emit(i);
      while (!your_turn.try_acquire_for(10ms)) {
        if (stop.stop_requested()) return;
      }
    }
  });
  for (Key i = 0; i < kRounds; ++i) {
    ASSERT_EQ(next_key(), i);
    your_turn.release();
  }
}

// Steady state allocates nothing: re-arming a one-shot watch on the same key, firing it, a
// loop-thread emit and a short one-shot timer, after a warm-up.
TEST_P(PullLoopTest, RearmingOneShotWatchDoesNotAllocateAfterWarmUp) {
  Pipe pipe;
  pipe.write_byte();  // never read: the pipe stays readable
  constexpr Key kIo = 1;
  constexpr Key kEmit = 2;
  constexpr Key kTimer = 3;
  int failures = 0;
  auto cycle = [&] {
    if (loop_->watch_io(kIo, pipe.read_fd, Interest::readable, true) != WatchStatus::ok) ++failures;
    if (loop_->watch_timer(kTimer, 0us, 0us) != WatchStatus::ok) ++failures;
    loop_->emit(kEmit);
    int seen = 0;
    while (seen < 3) {
      std::optional<Key> key = loop_->next_event();
      if (!key) {
        ++failures;
        return;
      }
      ++seen;
    }
  };
  constexpr int kWarmUpCycles = 1000;
  constexpr int kMeasuredCycles = 10000;
  for (int i = 0; i < kWarmUpCycles; ++i) cycle();
  t_allocations = 0;
  t_count_allocations = true;
  int* volatile probe = new int(0);  // proves the counting hook is live in this build
  delete probe;
  t_count_allocations = false;
  ASSERT_EQ(t_allocations, 1u);
  t_allocations = 0;
  t_count_allocations = true;
  for (int i = 0; i < kMeasuredCycles; ++i) cycle();
  t_count_allocations = false;
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(t_allocations, 0u) << "allocations in " << kMeasuredCycles << " steady-state cycles";
}

// ---- backend names -----------------------------------------------------------------------------

TEST(PullLoopBackendNames, ParseAndFormat) {
  struct Case {
    std::string_view text;
    std::optional<Backend> parsed;
  };
  const Case cases[] = {
      {"libev", Backend::libev}, {"epoll", Backend::epoll}, {"", std::nullopt},
      {"EPOLL", std::nullopt},   {"libuv", std::nullopt},   {"epoll ", std::nullopt},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(parse_backend(c.text), c.parsed) << "'" << c.text << "'";
    if (c.parsed) {
      EXPECT_EQ(to_string(*c.parsed), c.text);
      EXPECT_EQ(make_pull_loop(*c.parsed)->backend(), *c.parsed);
    }
  }
}

// ---- the key table -----------------------------------------------------------------------------

// Random inserts and erases agree with std::unordered_map, including across growth and with
// keys that collide (small sequential fds, aligned pointer-like values).
TEST(PullLoopKeyTable, MatchesUnorderedMapUnderChurn) {
  detail::KeyTable<int> table(8);  // small, so that it grows during the test
  std::unordered_map<Key, int> model;
  std::mt19937_64 rng(12345);  // fixed seed: a failure reproduces
  const Key key_shapes[] = {1, 64};  // fd-like and 64-byte-aligned pointer-like keys
  for (Key stride : key_shapes) {
    for (int step = 0; step < 200000; ++step) {
      const Key key = (rng() % 3000) * stride;
      const int op = static_cast<int>(rng() % 3);
      if (op == 0) {
        const bool inserted = table.insert(key, step) != nullptr;
        EXPECT_EQ(inserted, model.emplace(key, step).second) << "insert " << key;
      } else if (op == 1) {
        EXPECT_EQ(table.erase(key), model.erase(key) == 1) << "erase " << key;
      } else {
        const int* found = table.find(key);
        auto it = model.find(key);
        ASSERT_EQ(found != nullptr, it != model.end()) << "find " << key;
        if (found != nullptr) {
          EXPECT_EQ(*found, it->second);
        }
      }
      ASSERT_EQ(table.size(), model.size());
    }
    for (const auto& [key, value] : model) {
      ASSERT_NE(table.find(key), nullptr);
      EXPECT_EQ(*table.find(key), value);
      EXPECT_TRUE(table.erase(key));
    }
    model.clear();
    EXPECT_EQ(table.size(), 0u);
  }
}

}  // namespace
}  // namespace cb::loop
