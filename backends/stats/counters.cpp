#include "backends/stats/counters.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>

#include <sys/resource.h>
#include <unistd.h>

namespace cb::stats {

namespace {

constexpr std::array<std::string_view, kCounterCount> kCounterNames = {
    "dispatches", "duplicate_dispatches", "empty_reads", "wakeups",        "rearms",     "poll_rounds",
    "accepts",    "closes",               "sq_submissions", "cq_completions", "ring_enters",
    "suppressed_duplicates", "owner_collisions",
    "recv_nobufs", "recv_pauses",
    "gvl_timeslice_yields", "pipe_full_writes",
};

std::atomic<detail::CounterBlock*> g_blocks{nullptr};  // push-only list of every thread's block
std::mutex g_write_mu;
std::uint64_t g_snapshots = 0;  // guarded by g_write_mu

// getrusage(RUSAGE_SELF) as the "rusage" object of the header's format (times in microseconds).
std::string rusage_json() {
  rusage ru{};
  if (getrusage(RUSAGE_SELF, &ru) != 0) return "null";
  auto us = [](const timeval& tv) {
    return std::to_string(static_cast<std::uint64_t>(tv.tv_sec) * 1000000u + static_cast<std::uint64_t>(tv.tv_usec));
  };
  return "{\"utime_us\": " + us(ru.ru_utime) + ", \"stime_us\": " + us(ru.ru_stime) +
         ", \"nvcsw\": " + std::to_string(ru.ru_nvcsw) + ", \"nivcsw\": " + std::to_string(ru.ru_nivcsw) +
         ", \"minflt\": " + std::to_string(ru.ru_minflt) + ", \"majflt\": " + std::to_string(ru.ru_majflt) + "}";
}

}  // namespace

std::string_view counter_name(Counter c) { return kCounterNames[static_cast<std::size_t>(c)]; }

namespace {

// Releases the calling thread's block when the thread exits: its counts stay in the block (and in
// every later merge), and the next thread to need a block takes this one. The release store pairs
// with the acquiring exchange in take_free_block, so the new owner continues from the last counts.
struct BlockLease {
  detail::CounterBlock* block = nullptr;
  ~BlockLease() {
    if (block == nullptr) return;
    detail::tl_block = nullptr;
    block->owned.store(false, std::memory_order_release);
  }
};
thread_local BlockLease tl_lease;

detail::CounterBlock* take_free_block() {
  for (auto* b = g_blocks.load(std::memory_order_acquire); b != nullptr; b = b->next) {
    bool expected = false;
    if (!b->owned.load(std::memory_order_relaxed) &&
        b->owned.compare_exchange_strong(expected, true, std::memory_order_acquire, std::memory_order_relaxed))
      return b;
  }
  return nullptr;
}

}  // namespace

detail::CounterBlock& detail::this_thread_block() {
  detail::CounterBlock* b = take_free_block();
  if (b == nullptr) {
    b = new detail::CounterBlock();  // never freed: a merge after its thread exits still reads it
    b->owned.store(true, std::memory_order_relaxed);
    b->next = g_blocks.load(std::memory_order_relaxed);
    while (!g_blocks.compare_exchange_weak(b->next, b, std::memory_order_release, std::memory_order_relaxed)) {
    }
  }
  tl_lease.block = b;
  tl_block = b;
  return *b;
}

std::size_t detail::block_count() {
  std::size_t n = 0;
  for (auto* b = g_blocks.load(std::memory_order_acquire); b != nullptr; b = b->next) ++n;
  return n;
}

std::array<std::uint64_t, kCounterCount> merged_counters() {
  std::array<std::uint64_t, kCounterCount> sum{};
  for (auto* b = g_blocks.load(std::memory_order_acquire); b != nullptr; b = b->next)
    for (std::size_t i = 0; i < kCounterCount; ++i) sum[i] += b->v[i].load(std::memory_order_relaxed);
  return sum;
}

std::string counters_json(std::uint64_t snapshot) {
  auto sum = merged_counters();
  std::string out = "{\"snapshot\": " + std::to_string(snapshot) + ", \"pid\": " + std::to_string(getpid()) +
                    ", \"counters\": {";
  for (std::size_t i = 0; i < kCounterCount; ++i) {
    if (i) out += ", ";
    out += '"';
    out += kCounterNames[i];
    out += "\": " + std::to_string(sum[i]);
  }
  out += "}, \"rusage\": " + rusage_json() + "}\n";
  return out;
}

std::string write_counters(const std::string& path) {
  std::lock_guard lock(g_write_mu);
  std::string text = counters_json(++g_snapshots);
  std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr) return "unable to write " + tmp + ": " + std::strerror(errno);
  bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) return "unable to write " + tmp;
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return "unable to rename " + tmp + " to " + path + ": " + std::strerror(errno);
  return {};
}

}  // namespace cb::stats
