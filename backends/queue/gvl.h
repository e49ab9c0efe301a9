// An emulation of Ruby's global VM lock (GVL), to test the published explanation of why the
// worker-thread servers were slower ("the cost associated with the GVL, and contention for the
// job queue") in a language that has no such lock.
//
// One process-wide lock that a thread must hold to run "Ruby code" (event dispatch, parsing,
// answering). Two kinds, chosen by the models' --gvl-emulation:
//
// Kind::ruby31 (the default): the mechanism of Ruby 3.1's thread_pthread.c.
//   Hand-off: FIFO. A thread that finds the lock held joins the tail of a wait queue (Ruby's
//     gvl.waitq) and sleeps on its own condition variable; unlock() hands the lock directly to
//     the head of the queue (ownership passes without the lock ever being free, so a thread that
//     releases and at once retakes goes behind every thread already waiting). Ruby 3.1 signals
//     the head and clears the owner, so a thread arriving in the instant before the head wakes
//     may take it first; this emulation leaves that barging out, making the order exact.
//   Blocking regions: the lock is released around every call that may wait (Ruby's
//     BLOCKING_REGION): the read and write system calls of a session (begin_blocking and
//     end_blocking, net::BlockingRegion), a wait on an empty job queue (Queue#pop), the poll and
//     the wake-up pipe write (the models call unlock/lock or blocking_region around those).
//   Time slice: the first waiter becomes the timer (Ruby's do_gvl_timer): it sleeps at most
//     kTimeQuantum (Ruby's TIME_QUANTUM_MSEC, 100 ms) at a time and, on each expiry with the lock
//     still held, sets the holder's interrupt flag; the holder yields (hands the lock to the head
//     and queues at the tail) at its next check point (check_interrupts(), and the end of every
//     blocking region: Ruby's RUBY_VM_CHECK_INTS). The timer ticks periodically, as Ruby's does,
//     so a holder that took the lock late in a tick may be asked to yield after less than 100 ms;
//     one that holds it for more than 100 ms while another waits is always asked. A holder that
//     reaches no check point (a /spin handler: shared C++ with no check points, like a C
//     extension that never checks interrupts) keeps the lock until it does.
// Kind::mutex (the first emulation, kept to reproduce runs made with it): a std::mutex, neither
//   fair nor ordered (a thread that releases and retakes at once usually wins again), no time
//   slice, and held through a session's read and write (begin_blocking/end_blocking do nothing);
//   released only where the models call unlock/lock or blocking_region.
//
// Neither models the interpreter's own CPU cost per request. Disabled (the models without --gvl),
// every call returns at once.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string_view>

#include "backends/net/blocking_region.h"
#include "backends/stats/counters.h"

namespace cb::queue {

class Gvl final : public net::BlockingRegion {
 public:
  enum class Kind : std::uint8_t { ruby31, mutex };

  // Ruby's TIME_QUANTUM_MSEC: thread_pthread.c says 10 ms was too short for Linux's scheduler.
  static constexpr std::chrono::milliseconds kTimeQuantum{100};

  // The kind named by --gvl-emulation ("ruby31", "mutex"), or nothing for another word.
  static std::optional<Kind> kind_named(std::string_view name) {
    if (name == "ruby31") return Kind::ruby31;
    if (name == "mutex") return Kind::mutex;
    return std::nullopt;
  }

  explicit Gvl(bool enabled, Kind kind = Kind::ruby31, std::chrono::milliseconds quantum = kTimeQuantum)
      : enabled_(enabled), kind_(kind), quantum_(quantum) {}
  Gvl(const Gvl&) = delete;
  Gvl& operator=(const Gvl&) = delete;

  bool enabled() const { return enabled_; }
  Kind kind() const { return kind_; }

  // ruby31: threads queued for the lock now (tests wait on it to order their threads); else 0.
  std::size_t waiting() const {
    std::lock_guard l(mu_);
    std::size_t n = 0;
    for (const Waiter* w = head_; w != nullptr; w = w->next) ++n;
    return n;
  }

  // Blocks until the calling thread holds the lock (ruby31: in arrival order). Not re-entrant.
  void lock() {
    if (!enabled_) return;
    if (kind_ == Kind::mutex) return plain_.lock();
    std::unique_lock l(mu_);
    if (!held_) {  // free implies nobody waits: unlock() hands it over while anyone does
      grant_locked();
      return;
    }
    wait_turn(l);
  }

  // Releases the lock; ruby31: the longest waiter, if any, holds it when this returns.
  void unlock() {
    if (!enabled_) return;
    if (kind_ == Kind::mutex) return plain_.unlock();
    std::lock_guard l(mu_);
    hand_off_locked();
  }

  // A check point (Ruby's RUBY_VM_CHECK_INTS), called by the holder: if the timer asked it to
  // yield and another thread waits, hands the lock to the longest waiter and queues for it again.
  void check_interrupts() {
    if (!enabled_ || kind_ != Kind::ruby31 || !interrupt_.load(std::memory_order_relaxed)) return;
    std::unique_lock l(mu_);
    interrupt_.store(false, std::memory_order_relaxed);
    if (head_ == nullptr) return;  // nobody waits: keep running (Ruby: no switch when alone)
    stats::count(stats::Counter::gvl_timeslice_yields);
    hand_off_locked();
    wait_turn(l);
  }

  // Runs f without the lock (both kinds): a blocking call the models bracket themselves.
  template <class F>
  void blocking_region(F&& f) {
    unlock();
    f();
    lock();
    check_interrupts();
  }

  // net::BlockingRegion, around a session's read and send: ruby31 releases the lock there (and
  // checks for interrupts after), mutex holds it through them.
  void begin_blocking() override {
    if (kind_ == Kind::ruby31) unlock();
  }
  void end_blocking() override {
    if (kind_ != Kind::ruby31) return;
    lock();
    check_interrupts();
  }

 private:
  // A thread waiting for the lock; lives on that thread's stack while it is queued.
  struct Waiter {
    std::condition_variable cv;
    bool granted = false;  // the lock is this waiter's (set under mu_ by the thread handing it over)
    Waiter* next = nullptr;
  };

  // With mu_ held: the caller takes the free lock (a fresh holder has no pending interrupt).
  void grant_locked() {
    held_ = true;
    interrupt_.store(false, std::memory_order_relaxed);
  }

  // With mu_ held, by the holder: passes the lock to the head of the queue, or frees it.
  void hand_off_locked() {
    Waiter* w = head_;
    if (w == nullptr) {
      held_ = false;
      return;
    }
    head_ = w->next;
    if (head_ == nullptr) tail_ = nullptr;
    interrupt_.store(false, std::memory_order_relaxed);  // held_ stays true: ownership moves to w
    w->granted = true;
    w->cv.notify_one();  // under mu_: w may leave (and destroy its cv) as soon as mu_ is free
  }

  // With mu_ held (l) and the lock held by another thread: queues the caller at the tail and
  // returns once the lock has been handed to it. The first waiter without a timer becomes it.
  void wait_turn(std::unique_lock<std::mutex>& l) {
    Waiter me;
    if (tail_ != nullptr) tail_->next = &me;
    else head_ = &me;
    tail_ = &me;
    while (!me.granted) {
      if (timer_ == nullptr) timer_ = &me;  // Ruby's gvl.timer: one waiter kicks the holder
      if (timer_ == &me) {
        if (!me.cv.wait_for(l, quantum_, [&] { return me.granted; }) && held_) {
          interrupt_.store(true, std::memory_order_relaxed);  // the holder yields at its next check
        }
      } else {
        me.cv.wait(l, [&] { return me.granted || timer_ == nullptr; });
      }
    }
    if (timer_ == &me) {  // designate the next timer: the new head, if any (designate_timer_thread)
      timer_ = nullptr;
      if (head_ != nullptr) head_->cv.notify_one();
    }
  }

  const bool enabled_;
  const Kind kind_;
  const std::chrono::milliseconds quantum_;
  std::mutex plain_;  // Kind::mutex: the lock itself
  // Kind::ruby31 (all guarded by mu_, interrupt_ also read without it by the holder's check):
  mutable std::mutex mu_;
  bool held_ = false;
  Waiter* head_ = nullptr;  // FIFO of waiters, oldest first
  Waiter* tail_ = nullptr;
  Waiter* timer_ = nullptr;  // the waiter that times the holder's slice
  std::atomic<bool> interrupt_{false};  // the holder is asked to yield (Ruby's timer interrupt)
};

}  // namespace cb::queue
