// The GVL emulation (backends/queue/gvl.h): the rules of Ruby 3.1's lock that the default kind
// promises (a release wakes a waiter but hands nothing over, so a releaser may retake first; the
// read is a blocking region and the write is not; the 100 ms timer forces a switch at a check
// point), those of the FIFO hand-off kind kept for old runs, and what the first emulation (an
// unfair mutex) still excludes. Behaviour, not timing: every bound is a generous "before the
// holder gives up", never a measured duration.
#include "backends/queue/gvl.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using cb::queue::Gvl;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Waits (up to 10 s, a hung test's limit) until pred() holds; returns whether it did.
template <class Pred>
bool eventually(Pred pred) {
  const auto deadline = Clock::now() + 10s;
  while (!pred()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

std::string kind_name(Gvl::Kind k) {
  return k == Gvl::Kind::ruby31 ? "ruby31" : k == Gvl::Kind::fifo ? "fifo" : "mutex";
}

std::uint64_t counter(cb::stats::Counter c) { return cb::stats::merged_counters()[static_cast<std::size_t>(c)]; }

// fifo: threads that queue one after another while the lock is held get it in that order.
TEST(Gvl, FifoHandsOffInArrivalOrder) {
  constexpr int kWaiters = 5;
  Gvl gvl(true, Gvl::Kind::fifo);
  std::vector<int> order;  // appended by each waiter while it holds the lock
  std::vector<std::thread> threads;
  gvl.lock();
  for (int i = 0; i < kWaiters; ++i) {
    threads.emplace_back([&gvl, &order, i] {
      gvl.lock();
      order.push_back(i);
      gvl.unlock();
    });
    ASSERT_TRUE(eventually([&] { return gvl.waiting() == static_cast<std::size_t>(i + 1); })) << "waiter " << i;
  }
  gvl.unlock();
  for (auto& t : threads) t.join();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
}

// fifo: a holder that releases and at once retakes goes behind the thread already waiting.
TEST(Gvl, FifoReleaseAndRetakeQueuesBehindAWaiter) {
  Gvl gvl(true, Gvl::Kind::fifo);
  std::vector<const char*> order;
  gvl.lock();
  std::thread waiter([&] {
    gvl.lock();
    order.push_back("waiter");
    gvl.unlock();
  });
  ASSERT_TRUE(eventually([&] { return gvl.waiting() == 1; }));
  gvl.unlock();
  gvl.lock();
  order.push_back("holder");
  gvl.unlock();
  waiter.join();
  EXPECT_EQ(order, (std::vector<const char*>{"waiter", "holder"}));
}

// A holder that releases and at once retakes, 200 times, while another thread keeps asking for the
// lock: ruby31 wakes the waiter but hands nothing over, so the releaser gets back in before the
// waiter runs at least once (gvl_release_common, then gvl_acquire_common finding it free); fifo
// hands it to the waiter every time.
struct RetakeCase {
  const char* label;
  Gvl::Kind kind;
  bool releaser_may_retake_first;
};

class GvlRetake : public ::testing::TestWithParam<RetakeCase> {};

TEST_P(GvlRetake, ReleaserRetakesBeforeTheWokenWaiterRuns) {
  const RetakeCase& c = GetParam();
  Gvl gvl(true, c.kind);
  std::atomic<long> entries{0};  // times the other thread got the lock
  bool stop = false;             // read and written under the lock
  gvl.lock();
  std::thread other([&] {
    for (;;) {
      gvl.lock();
      bool done = stop;
      entries.fetch_add(1);
      gvl.unlock();
      if (done) return;
    }
  });
  int retaken_first = 0;
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(eventually([&] { return gvl.waiting() == 1; })) << "round " << i;  // it waits, asleep
    const long before = entries.load();
    gvl.unlock();
    gvl.lock();
    if (entries.load() == before) ++retaken_first;
  }
  stop = true;
  gvl.unlock();
  other.join();
  if (c.releaser_may_retake_first) EXPECT_GT(retaken_first, 0) << c.label;
  else EXPECT_EQ(retaken_first, 0) << c.label;
}

INSTANTIATE_TEST_SUITE_P(Cases, GvlRetake,
                         ::testing::Values(RetakeCase{"ruby31: no hand-off", Gvl::Kind::ruby31, true},
                                           RetakeCase{"fifo: hand-off at every release", Gvl::Kind::fifo, false}),
                         [](const auto& info) { return std::string(info.param.kind == Gvl::Kind::ruby31 ? "ruby31" : "fifo"); });

// A holder making many non-blocking writes (write_nonblock: no blocking region in Ruby 3.1) never
// lets a waiting thread in; fifo released around each.
TEST(Gvl, Ruby31HolderKeepsTheLockThroughManyWrites) {
  Gvl gvl(true, Gvl::Kind::ruby31);
  std::atomic<bool> other_ran{false};
  gvl.lock();
  std::thread other([&] {
    gvl.lock();
    other_ran.store(true);
    gvl.unlock();
  });
  ASSERT_TRUE(eventually([&] { return gvl.waiting() == 1; }));
  for (int i = 0; i < 100000; ++i) {
    gvl.begin_blocking(cb::net::SysCall::write);
    gvl.end_blocking(cb::net::SysCall::write);
  }
  EXPECT_FALSE(other_ran.load());
  gvl.unlock();
  other.join();
  EXPECT_TRUE(other_ran.load());
}

struct RegionCase {
  const char* label;
  Gvl::Kind kind;
  enum { region, session_read, session_write } where;  // blocking_region, or a session's call
  bool releases;
};

class GvlRegion : public ::testing::TestWithParam<RegionCase> {};

// Inside a blocking region another thread can take the lock and run; ruby31 releases around a
// session's read (read_nonblock) and holds it through its write (write_nonblock), fifo releases
// around both, the first emulation holds the lock through both.
TEST_P(GvlRegion, AnotherThreadRunsInsideTheRegionOnlyIfItReleases) {
  const RegionCase& c = GetParam();
  Gvl gvl(true, c.kind);
  std::atomic<bool> other_ran{false};
  std::atomic<bool> region_open{false};
  gvl.lock();
  std::thread other([&] {
    while (!region_open.load()) std::this_thread::yield();
    gvl.lock();
    other_ran.store(true);
    gvl.unlock();
  });
  bool ran_inside = false;
  auto inside = [&] {
    region_open.store(true);
    // Released: the other thread runs while we wait. Held: it cannot, and we give up after a while.
    ran_inside = eventually([&] { return other_ran.load(); });
  };
  if (c.where != RegionCase::region) {
    const auto call = c.where == RegionCase::session_read ? cb::net::SysCall::read : cb::net::SysCall::write;
    if (c.releases) {
      gvl.begin_blocking(call);
      inside();
      gvl.end_blocking(call);
    } else {
      gvl.begin_blocking(call);
      region_open.store(true);
      std::this_thread::sleep_for(200ms);  // time for the other thread to try: it must not get in
      ran_inside = other_ran.load();
      gvl.end_blocking(call);
    }
  } else {
    gvl.blocking_region(inside);
  }
  gvl.unlock();
  other.join();
  EXPECT_EQ(ran_inside, c.releases) << c.label;
  EXPECT_TRUE(other_ran.load()) << c.label;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, GvlRegion,
    ::testing::Values(RegionCase{"ruby31 blocking_region", Gvl::Kind::ruby31, RegionCase::region, true},
                      RegionCase{"ruby31 session read", Gvl::Kind::ruby31, RegionCase::session_read, true},
                      RegionCase{"ruby31 session write (held)", Gvl::Kind::ruby31, RegionCase::session_write, false},
                      RegionCase{"fifo blocking_region", Gvl::Kind::fifo, RegionCase::region, true},
                      RegionCase{"fifo session read", Gvl::Kind::fifo, RegionCase::session_read, true},
                      RegionCase{"fifo session write", Gvl::Kind::fifo, RegionCase::session_write, true},
                      RegionCase{"mutex blocking_region", Gvl::Kind::mutex, RegionCase::region, true},
                      RegionCase{"mutex session read (held)", Gvl::Kind::mutex, RegionCase::session_read, false},
                      RegionCase{"mutex session write (held)", Gvl::Kind::mutex, RegionCase::session_write, false}),
    [](const auto& info) { return kind_name(info.param.kind) +
                                  (info.param.where == RegionCase::region ? "_region"
                                   : info.param.where == RegionCase::session_read ? "_read" : "_write"); });

// A holder busy for up to 1 s, passing check points, yields to a waiter long before that (the
// 100 ms slice); with the first emulation the waiter gets in only after the holder unlocks.
struct SliceCase {
  const char* label;
  Gvl::Kind kind;
  bool waiter_gets_in_first;
};

class GvlSlice : public ::testing::TestWithParam<SliceCase> {};

TEST_P(GvlSlice, LongHolderYieldsToAWaiterAtACheckPoint) {
  const SliceCase& c = GetParam();
  Gvl gvl(true, c.kind);
  std::atomic<bool> waiter_ran{false};
  const auto yields_before = counter(cb::stats::Counter::gvl_timeslice_yields);
  gvl.lock();
  std::thread waiter([&] {
    gvl.lock();
    waiter_ran.store(true);
    gvl.unlock();
  });
  const auto busy_until = Clock::now() + 1s;
  bool seen_while_holding = false;
  while (Clock::now() < busy_until) {
    gvl.check_interrupts();
    if (waiter_ran.load()) {
      seen_while_holding = true;
      break;
    }
  }
  gvl.unlock();
  waiter.join();
  EXPECT_EQ(seen_while_holding, c.waiter_gets_in_first) << c.label;
  const auto yields = counter(cb::stats::Counter::gvl_timeslice_yields) - yields_before;
  if (c.waiter_gets_in_first) EXPECT_GE(yields, 1u) << c.label;
  else EXPECT_EQ(yields, 0u) << c.label;
}

INSTANTIATE_TEST_SUITE_P(Cases, GvlSlice,
                         ::testing::Values(SliceCase{"ruby31: 100 ms timer, gvl_yield", Gvl::Kind::ruby31, true},
                                           SliceCase{"fifo: 100 ms slice", Gvl::Kind::fifo, true},
                                           SliceCase{"mutex: no slice", Gvl::Kind::mutex, false}),
                         [](const auto& info) { return kind_name(info.param.kind); });

// A holder alone never yields, however long it holds the lock (no waiter, so no timer).
class GvlAlone : public ::testing::TestWithParam<Gvl::Kind> {};

TEST_P(GvlAlone, HolderAloneKeepsTheLock) {
  Gvl gvl(true, GetParam());
  const auto yields_before = counter(cb::stats::Counter::gvl_timeslice_yields);
  gvl.lock();
  const auto until = Clock::now() + 250ms;
  while (Clock::now() < until) gvl.check_interrupts();
  gvl.unlock();
  EXPECT_EQ(counter(cb::stats::Counter::gvl_timeslice_yields), yields_before);
}

INSTANTIATE_TEST_SUITE_P(Kinds, GvlAlone, ::testing::Values(Gvl::Kind::ruby31, Gvl::Kind::fifo),
                         [](const auto& info) { return kind_name(info.param); });

// Both kinds exclude: threads incrementing a plain integer under the lock lose no increment.
class GvlExclusion : public ::testing::TestWithParam<Gvl::Kind> {};

TEST_P(GvlExclusion, NoIncrementIsLost) {
  Gvl gvl(true, GetParam());
  constexpr int kThreads = 4, kEach = 20000;
  long total = 0;
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        gvl.lock();
        ++total;
        if (i % 64 == 0) gvl.blocking_region([] {});
        gvl.unlock();
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(total, long{kThreads} * kEach);
}

INSTANTIATE_TEST_SUITE_P(Kinds, GvlExclusion, ::testing::Values(Gvl::Kind::ruby31, Gvl::Kind::fifo, Gvl::Kind::mutex),
                         [](const auto& info) { return kind_name(info.param); });

TEST(Gvl, KindNamedByTheOption) {
  EXPECT_EQ(Gvl::kind_named("ruby31"), Gvl::Kind::ruby31);
  EXPECT_EQ(Gvl::kind_named("mutex"), Gvl::Kind::mutex);
  EXPECT_EQ(Gvl::kind_named("fifo"), Gvl::Kind::fifo);
  EXPECT_EQ(Gvl::kind_named("ruby"), std::nullopt);
}

// Disabled (a model without --gvl): nothing is locked, so two threads "hold" it at once.
TEST(Gvl, DisabledLocksNothing) {
  Gvl gvl(false);
  gvl.lock();
  std::atomic<bool> other{false};
  std::thread t([&] {
    gvl.lock();
    other.store(true);
    gvl.unlock();
  });
  t.join();
  gvl.unlock();
  EXPECT_TRUE(other.load());
}

}  // namespace
