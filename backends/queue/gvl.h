// An emulation of Ruby's global VM lock (GVL), to test the published explanation of why the
// worker-thread servers were slower ("the cost associated with the GVL, and contention for the
// job queue") in a language that has no such lock.
//
// What it covers: one process-wide lock that a thread must hold to run "Ruby code" (request
// handling, event dispatch), released around blocking waits (an empty job queue, a blocking
// poll), as Ruby releases it around blocking calls.
//
// Hand-off, compared with Ruby 3.x's thread_pthread.c:
//   Handoff::mutex (worker-pool's default, the original emulation): a std::mutex, neither fair
//     nor ordered; a thread that releases and retakes at once usually wins again.
//   Handoff::fifo (selector-pool): a ticket lock. A thread that wants the lock takes the next
//     ticket and sleeps until it is served; unlock serves the next ticket and wakes its holder.
//     This is the shape of Ruby's ready queue: thread_sched_to_running enqueues a waiter
//     (readyq, FIFO), and a releasing thread (thread_sched_to_waiting, at every blocking region)
//     hands the GVL to the head of that queue, so a thread that releases and retakes (the select
//     loop around its poll) goes behind every thread already waiting.
// Neither models: the timer thread's 100 ms time quantum (TIME_QUANTUM_MSEC), which sets the
// holder's interrupt flag when others wait so it yields at its next check (here a holder keeps
// the lock until it blocks or unlocks); the release around the system calls of non-blocking IO
// methods (read_nonblock, write_nonblock run in blocking regions in Ruby 3: the models hold the
// lock through a whole session step); and the interpreter's own CPU cost.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace cb::queue {

class Gvl {
 public:
  enum class Handoff { mutex, fifo };

  explicit Gvl(bool enabled, Handoff handoff = Handoff::mutex) : enabled_(enabled), handoff_(handoff) {}
  void lock() {
    if (!enabled_) return;
    if (handoff_ == Handoff::mutex) return mu_.lock();
    std::unique_lock l(mu_);
    const std::uint64_t mine = next_ticket_++;
    if (serving_ != mine) {
      ++waiters_;
      cv_.wait(l, [&] { return serving_ == mine; });
      --waiters_;
    }
  }
  void unlock() {
    if (!enabled_) return;
    if (handoff_ == Handoff::mutex) return mu_.unlock();
    bool wake;
    {
      std::lock_guard l(mu_);
      ++serving_;
      wake = waiters_ > 0;
    }
    // Every waiter checks its ticket; at most threads+1 of them (a handful), so notify_all is
    // a bounded herd, and only when someone waits.
    if (wake) cv_.notify_all();
  }
  bool enabled() const { return enabled_; }

 private:
  bool enabled_;
  Handoff handoff_;
  std::mutex mu_;  // the lock itself (mutex) or the ticket state's guard (fifo)
  std::condition_variable cv_;
  std::uint64_t next_ticket_ = 0;  // fifo: guarded by mu_
  std::uint64_t serving_ = 0;
  int waiters_ = 0;
};

}  // namespace cb::queue
