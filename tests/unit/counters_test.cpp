// The mechanism counters: per-thread counts merge to their sum (threads that exited included),
// and the JSON names every counter in enum order.
#include "backends/stats/counters.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

using cb::stats::Counter;

TEST(Counters, MergeSumsThreadsIncludingExitedOnes) {
  auto before = cb::stats::merged_counters();
  constexpr int kThreads = 4, kEach = 10000;
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([] {
      for (int i = 0; i < kEach; ++i) cb::stats::count(Counter::dispatches);
      cb::stats::count(Counter::ring_enters, 7);
    });
  for (auto& t : ts) t.join();
  auto after = cb::stats::merged_counters();
  EXPECT_EQ(after[size_t(Counter::dispatches)] - before[size_t(Counter::dispatches)], uint64_t(kThreads * kEach));
  EXPECT_EQ(after[size_t(Counter::ring_enters)] - before[size_t(Counter::ring_enters)], uint64_t(kThreads * 7));
  EXPECT_EQ(after[size_t(Counter::empty_reads)], before[size_t(Counter::empty_reads)]);
}

// A model that starts a thread per connection (thread-per-connection) must not hold a block per
// connection it ever served: an exited thread's block is taken by the next thread, its counts kept.
TEST(Counters, ThreadsOneAfterAnotherReuseOneBlockAndKeepEveryCount) {
  std::thread([] { cb::stats::count(Counter::accepts); }).join();  // at least one free block now
  auto before = cb::stats::merged_counters();
  const std::size_t blocks_before = cb::stats::detail::block_count();
  constexpr int kSequentialThreads = 1000;
  for (int i = 0; i < kSequentialThreads; ++i)
    std::thread([] { cb::stats::count(Counter::closes, 3); }).join();
  auto after = cb::stats::merged_counters();
  EXPECT_EQ(after[size_t(Counter::closes)] - before[size_t(Counter::closes)], uint64_t(3 * kSequentialThreads));
  EXPECT_EQ(cb::stats::detail::block_count(), blocks_before) << "each exited thread's block is reused";
}

TEST(Counters, JsonNamesEveryCounterInOrder) {
  std::string j = cb::stats::counters_json(3);
  EXPECT_EQ(j.rfind("{\"snapshot\": 3, \"pid\": " + std::to_string(getpid()) + ", \"counters\": {\"dispatches\": ", 0), 0u)
      << j;
  std::size_t pos = 0;
  for (std::size_t i = 0; i < cb::stats::kCounterCount; ++i) {
    std::string key = "\"" + std::string(cb::stats::counter_name(Counter(i))) + "\": ";
    std::size_t at = j.find(key, pos);
    ASSERT_NE(at, std::string::npos) << key << " missing or out of order in " << j;
    pos = at;
  }
  EXPECT_EQ(cb::stats::counter_name(Counter::ring_enters), "ring_enters");
}

TEST(Counters, WriteReplacesTheFileWithANewerSnapshot) {
  std::string path = testing::TempDir() + "/counters_test_" + std::to_string(getpid()) + ".json";
  ASSERT_EQ(cb::stats::write_counters(path), "");
  cb::stats::count(Counter::closes, 5);
  ASSERT_EQ(cb::stats::write_counters(path), "");
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_NE(ss.str().find("\"snapshot\": 2"), std::string::npos) << ss.str();
  EXPECT_NE(cb::stats::write_counters("/nonexistent-dir/x.json"), "");
  std::remove(path.c_str());
}

// The "rusage" object's value for key (a non-negative integer), or -1 when absent.
static long long rusage_field(const std::string& json, const std::string& key) {
  std::size_t obj = json.find("\"rusage\": {");
  if (obj == std::string::npos) return -1;
  std::size_t at = json.find("\"" + key + "\": ", obj);
  if (at == std::string::npos) return -1;
  return std::stoll(json.substr(at + key.size() + 4));
}

TEST(Counters, RusageKeepsTheSwitchesOfThreadsThatExited) {
  long long before = rusage_field(cb::stats::counters_json(1), "nvcsw");
  ASSERT_GE(before, 0);
  // Each thread sleeps (a voluntary switch) a few times, then exits: its switches must stay counted.
  constexpr int kThreads = 8, kSleeps = 5;
  for (int t = 0; t < kThreads; ++t)
    std::thread([] {
      for (int i = 0; i < kSleeps; ++i) usleep(200);
    }).join();
  std::string j = cb::stats::counters_json(2);
  EXPECT_GE(rusage_field(j, "nvcsw") - before, kThreads * kSleeps) << j;
  for (const char* key : {"utime_us", "stime_us", "nivcsw", "minflt", "majflt"}) EXPECT_GE(rusage_field(j, key), 0) << key;
}
