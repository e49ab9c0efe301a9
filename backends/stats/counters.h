// Named event counters that explain a model's mechanism (how often it dispatched, re-armed,
// woke, found nothing to read), counted per thread and merged when read.
//
// Cost: count() is a load and a store to a thread_local slot (relaxed atomics, so a merge from
// another thread is race-free; on x86 it compiles to a plain add). The first count() on a thread
// takes a block: a free one left by a thread that exited, else a new one. A block is never freed
// and keeps its counts when its thread exits (a merge after the exit still reads them); the next
// thread that takes it adds to them. So a model that starts a thread per connection holds as many
// blocks as it ever had threads at once, not one per connection it served.
//
// Output (--counters-out PATH): a JSON object {"snapshot": K, "pid": P, "counters": {"dispatches":
// N, ...}, "rusage": {"utime_us": U, "stime_us": S, "nvcsw": V, "nivcsw": I, "minflt": F,
// "majflt": J}}, written at exit and on SIGUSR1 (main's signal thread), to PATH.tmp then renamed, so a
// reader never sees half a file. K counts writes, so a reader can tell a fresh snapshot from an
// old one; P is the writing process (in cluster mode each worker writes PATH.w<slot>, and a
// restarted worker's new pid tells its counts from its predecessor's: cluster.h).
// "rusage" is getrusage(RUSAGE_SELF): the whole thread group, threads that already exited included
// (the kernel folds an exiting thread's counts into its process), which a sum over the live threads
// in /proc/PID/task cannot give (thread-per-connection's threads exit with their switches).
// Every value is cumulative since start; the harness differences two snapshots around its
// measured window (scripts/cbenchlib/servercounters.py).
//
// To add a counter: a new enumerator before `count_`, and its name in kCounterNames (counters.cpp).
#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

namespace cb::stats {

enum class Counter : std::uint8_t {
  dispatches,            // a ready connection handed to the code that serves it (inline or a worker)
  duplicate_dispatches,  // a dispatch of a connection another worker still owned (selector-pool)
  empty_reads,           // a read that returned EAGAIN (nothing there)
  wakeups,               // a cross-thread wake-up consumed (pipe byte, eventfd, async)
  rearms,                // a watcher/monitor stopped and started again, or re-armed (oneshot)
  poll_rounds,           // one return from the poller (epoll_wait, ev_run iteration, select)
  accepts,               // connections accepted
  closes,                // connections closed by the server
  sq_submissions,        // io_uring: SQEs submitted
  cq_completions,        // io_uring: CQEs reaped
  ring_enters,           // io_uring: io_uring_enter calls
  suppressed_duplicates, // selector-pool: a readiness not pushed because the connection had its
                         // bound of dispatches in flight already
  owner_collisions,      // selector-pool: a worker found the connection owned by another worker
                         // and left it alone (the duplicate that would have raced)
  // io-uring --uring-recv multishot (re-arms of its receive count as `rearms`):
  recv_nobufs,           // a multishot receive ended because the buffer ring ran dry (ENOBUFS)
  recv_pauses,           // a multishot receive cancelled because its held queue was full
  // The GVL emulation and selector-pool's wake-up pipe:
  gvl_timeslice_yields,  // a GVL holder asked by the timer (100 ms slice) yielded to a waiter
  pipe_full_writes,      // selector-pool: a worker's wake-up byte found the user pipe full (the
                         // default waits until it is writable; --dispatch capped drops the byte)
  count_
};

inline constexpr std::size_t kCounterCount = static_cast<std::size_t>(Counter::count_);

// The name of each counter in the JSON output, in enum order.
std::string_view counter_name(Counter c);

namespace detail {
struct CounterBlock {
  std::array<std::atomic<std::uint64_t>, kCounterCount> v{};
  CounterBlock* next = nullptr;     // registry list, push-only
  std::atomic<bool> owned{false};   // a live thread counts into it; released at that thread's exit
};
CounterBlock& this_thread_block();  // takes a free block, or registers a new one, on first use
std::size_t block_count();          // blocks ever registered (tests: reuse keeps this bounded)
inline thread_local CounterBlock* tl_block = nullptr;
}  // namespace detail

// Adds n to counter c for the calling thread. Lock-free; no allocation after the first call on a thread.
inline void count(Counter c, std::uint64_t n = 1) {
  detail::CounterBlock* b = detail::tl_block;
  if (b == nullptr) [[unlikely]] b = &detail::this_thread_block();
  auto& slot = b->v[static_cast<std::size_t>(c)];
  slot.store(slot.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

// Sum of every thread's counts (threads that exited included). Thread-safe; values from threads
// still counting may be a few events behind.
std::array<std::uint64_t, kCounterCount> merged_counters();

// The JSON text described above (snapshot is the caller's write number).
std::string counters_json(std::uint64_t snapshot);

// Writes counters_json to path via path.tmp + rename. Returns an empty string, or the failure.
// Thread-safe (serialised internally); called from main's signal thread and at exit.
std::string write_counters(const std::string& path);

}  // namespace cb::stats
