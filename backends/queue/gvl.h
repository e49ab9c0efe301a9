// An emulation of Ruby's global VM lock (GVL), to test the published explanation of why the
// worker-thread servers were slower ("the cost associated with the GVL, and contention for the
// job queue") in a language that has no such lock.
//
// One process-wide lock that a thread must hold to run "Ruby code" (event dispatch, parsing,
// answering). Three kinds, chosen by the models' --gvl-emulation:
//
// Kind::ruby31 (the default): the rules of Ruby 3.1's thread_pthread.c (the same logic since 2.6;
// 3.1 only moved the fields from rb_vm_t into rb_global_vm_lock_t), function by function:
//   unlock() is gvl_release_common: the owner is cleared and the head of the wait queue is
//     signalled; nothing is handed over. The woken waiter still has to be scheduled and find the
//     lock free, so a releaser that retakes it at once (lock() is gvl_acquire_common: a free lock
//     is taken whoever waits) usually keeps it, above all on one CPU. The waiter, finding it owned
//     again, sleeps again where it was in the queue (the do-while over gvl.owner).
//   The timer is do_gvl_timer: when a thread acquires and no waiter times the slice, it signals
//     the newest waiter (designate_timer_thread), which becomes the timer: it sleeps until a
//     deadline TIME_QUANTUM_MSEC (100 ms) away, carried over when it was woken early (the static
//     `abs`, renewed only after a timeout or an uncontended acquire), and every time it wakes,
//     early (signalled by a release) or at the deadline, it sets the timer interrupt of whoever
//     owns the lock then (timer_thread_function). A waiter signalled by a release that lost the
//     race to a returning releaser therefore interrupts that releaser.
//   check_interrupts() is RUBY_VM_CHECK_INTS: a thread whose timer interrupt is set yields
//     (thread.c rb_threadptr_execute_interrupts -> rb_thread_schedule_limits: each interrupt adds
//     a whole quantum to running_time_us, which is reset only when another thread runs, so the
//     first interrupt always reaches the 100 ms limit). The yield is gvl_yield: release, and if a
//     waiter was signalled wait until some waiter has taken the lock (need_yield/switch_cond: the
//     one forced hand-off), else sched_yield(); then acquire like anyone else.
//   Blocking regions: the lock is released (unlock) before and retaken (lock, then a check point:
//     RUBY_VM_CHECK_INTS_BLOCKING) after the calls Ruby 3.1 runs in BLOCKING_REGION:
//     io.c read_internal_call -> rb_thread_io_blocking_region (IO#read_nonblock's and IO#read's
//     read(2): begin_blocking(SysCall::read)); IO#write's write(2) and its wait on a full pipe
//     (io.c rb_write_internal, rb_io_maybe_wait_writable); Queue#pop on an empty queue
//     (thread_sync.c queue_sleep -> native_sleep, GVL_UNLOCK_BEGIN); nio4r's epoll_wait (its libev
//     calls the poll through rb_thread_call_without_gvl). Not released: IO#write_nonblock (io.c
//     io_write_nonblock calls write(2) with the lock held: begin_blocking(SysCall::write) does
//     nothing), Queue#push and a pop that finds a job.
//   A session's read and write reach the lock through begin_blocking/end_blocking; the models
//   bracket the others themselves (blocking_region, or unlock and lock then check_interrupts).
// Kind::fifo (the second emulation, kept to reproduce runs made with it): unlock() hands the lock
//   to the longest waiter (ownership passes without the lock ever being free, so a thread that
//   releases and at once retakes goes behind every waiter: a switch at every blocking call under
//   contention), released around both the read and the write of a session, and the first waiter
//   sets the holder's interrupt at each 100 ms tick, on which the holder hands off and requeues.
//   Ruby's counters contradict it (0.03-0.06 switches per request where it makes 10).
// Kind::mutex (the first emulation): a std::mutex, neither fair nor ordered, no time slice, held
//   through a session's read and write; released only where the models call unlock/lock or
//   blocking_region.
//
// None models the interpreter's own CPU cost per request, or check points inside a handler (Ruby
// checks at method calls and backward branches; here only where the models call check_interrupts
// and after each blocking region: a /spin handler holds the lock throughout, like a C extension
// that never checks). Disabled (the models without --gvl), every call returns at once.
#pragma once
#include <sched.h>

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
  enum class Kind : std::uint8_t { ruby31, fifo, mutex };

  // Ruby's TIME_QUANTUM_MSEC: thread_pthread.c says 10 ms was too short for Linux's scheduler.
  static constexpr std::chrono::milliseconds kTimeQuantum{100};

  // The kind named by --gvl-emulation ("ruby31", "fifo", "mutex"), or nothing for another word.
  static std::optional<Kind> kind_named(std::string_view name) {
    if (name == "ruby31") return Kind::ruby31;
    if (name == "fifo") return Kind::fifo;
    if (name == "mutex") return Kind::mutex;
    return std::nullopt;
  }

  explicit Gvl(bool enabled, Kind kind = Kind::ruby31, std::chrono::milliseconds quantum = kTimeQuantum)
      : enabled_(enabled), kind_(kind), quantum_(quantum) {}
  Gvl(const Gvl&) = delete;
  Gvl& operator=(const Gvl&) = delete;

  bool enabled() const { return enabled_; }
  Kind kind() const { return kind_; }

  // ruby31 and fifo: threads queued for the lock now (tests wait on it to order their threads).
  std::size_t waiting() const {
    std::lock_guard l(mu_);
    std::size_t n = 0;
    for (const Waiter* w = head_; w != nullptr; w = w->next) ++n;
    return n;
  }

  // Blocks until the calling thread holds the lock (ruby31: a free lock is taken at once, waiters
  // or not; fifo: in arrival order). Not re-entrant.
  void lock() {
    if (!enabled_) return;
    if (kind_ == Kind::mutex) return plain_.lock();
    std::unique_lock l(mu_);
    if (kind_ == Kind::ruby31) return acquire_locked(l);
    if (owner_ == nullptr) {  // fifo: free implies nobody waits (unlock() hands it over)
      grant_fifo_locked();
      return;
    }
    wait_turn_fifo(l);
  }

  // Releases the lock. ruby31: wakes the longest waiter, which must still find it free; fifo: the
  // longest waiter holds it when this returns.
  void unlock() {
    if (!enabled_) return;
    if (kind_ == Kind::mutex) return plain_.unlock();
    std::lock_guard l(mu_);
    if (kind_ == Kind::ruby31) release_locked();
    else hand_off_fifo_locked();
  }

  // A check point (RUBY_VM_CHECK_INTS), called by the holder: if the timer interrupted it, it
  // yields (ruby31: gvl_yield; fifo: hands the lock to the longest waiter and queues again).
  void check_interrupts() {
    if (!enabled_ || kind_ == Kind::mutex) return;
    if (interrupted_.load(std::memory_order_relaxed) != self()) return;
    std::unique_lock l(mu_);
    interrupted_.store(nullptr, std::memory_order_relaxed);
    if (kind_ == Kind::ruby31) return yield_locked(l);
    if (head_ == nullptr) return;  // fifo: nobody waits, keep running
    stats::count(stats::Counter::gvl_timeslice_yields);
    hand_off_fifo_locked();
    wait_turn_fifo(l);
  }

  // Runs f without the lock (every kind): a blocking call the models bracket themselves
  // (BLOCKING_REGION, then RUBY_VM_CHECK_INTS_BLOCKING).
  template <class F>
  void blocking_region(F&& f) {
    unlock();
    f();
    lock();
    check_interrupts();
  }

  // net::BlockingRegion, around a session's read and send. ruby31 releases around the read only
  // (read_nonblock) and holds the lock through the write (write_nonblock); fifo releases around
  // both; mutex holds it through both.
  void begin_blocking(net::SysCall call) override {
    if (releases_around(call)) unlock();
  }
  void end_blocking(net::SysCall call) override {
    if (!releases_around(call)) return;
    lock();
    check_interrupts();
  }

 private:
  // A thread waiting for the lock; lives on that thread's stack while it is queued.
  struct Waiter {
    std::condition_variable cv;  // Ruby's native_thread_data.cond.gvlq
    bool granted = false;        // fifo only: the lock was handed to this waiter (under mu_)
    Waiter* prev = nullptr;
    Waiter* next = nullptr;
  };

  // The calling thread's identity (Ruby's rb_thread_t as gvl.owner).
  static const void* self() {
    thread_local const char tag = 0;
    return &tag;
  }

  bool releases_around(net::SysCall call) const {
    if (!enabled_) return false;
    switch (kind_) {
      case Kind::ruby31: return call == net::SysCall::read;
      case Kind::fifo: return true;
      case Kind::mutex: return false;
    }
    return false;
  }

  void enqueue_locked(Waiter& w) {
    w.prev = tail_;
    if (tail_ != nullptr) tail_->next = &w;
    else head_ = &w;
    tail_ = &w;
  }

  void dequeue_locked(Waiter& w) {
    (w.prev != nullptr ? w.prev->next : head_) = w.next;
    (w.next != nullptr ? w.next->prev : tail_) = w.prev;
    w.prev = w.next = nullptr;
  }

  // --- ruby31 --------------------------------------------------------------------------------
  // gvl_acquire_common, with mu_ held (l): returns holding the lock.
  void acquire_locked(std::unique_lock<std::mutex>& l) {
    if (owner_ != nullptr) {
      Waiter me;
      enqueue_locked(me);
      do {
        if (timer_ == nullptr) run_timer_locked(me, l);
        else me.cv.wait(l);
      } while (owner_ != nullptr);
      dequeue_locked(me);
      if (need_yield_) {  // a yielding holder waits for a waiter to take over: this one did
        need_yield_ = false;
        switch_cv_.notify_one();
      }
    } else {
      timer_timed_out_ = true;  // uncontended: the next timer starts a fresh quantum
    }
    owner_ = self();
    if (timer_ == nullptr && tail_ != nullptr) tail_->cv.notify_one();  // designate_timer_thread
  }

  // gvl_release_common, with mu_ held. Returns the waiter it signalled, if any.
  Waiter* release_locked() {
    owner_ = nullptr;
    Waiter* next = head_;
    if (next != nullptr) next->cv.notify_one();
    return next;
  }

  // do_gvl_timer, with mu_ held, by the waiter `me` while no other waiter times the slice.
  void run_timer_locked(Waiter& me, std::unique_lock<std::mutex>& l) {
    timer_ = &me;
    if (timer_timed_out_) timer_deadline_ = std::chrono::steady_clock::now() + quantum_;
    timer_timed_out_ = me.cv.wait_until(l, timer_deadline_) == std::cv_status::timeout;
    if (owner_ != nullptr) interrupted_.store(owner_, std::memory_order_relaxed);  // timer_thread_function
    timer_ = nullptr;
  }

  // gvl_yield, with mu_ held, by the holder: release, let a signalled waiter take over, retake.
  void yield_locked(std::unique_lock<std::mutex>& l) {
    stats::count(stats::Counter::gvl_timeslice_yields);
    Waiter* next = release_locked();
    if (wait_yield_) {  // another thread is yielding: wait until its waiter has taken over
      switch_wait_cv_.wait(l, [&] { return !wait_yield_; });
    } else if (next != nullptr) {
      need_yield_ = wait_yield_ = true;
      switch_cv_.wait(l, [&] { return !need_yield_; });
      wait_yield_ = false;
      switch_wait_cv_.notify_all();
    } else {
      l.unlock();
      sched_yield();
      l.lock();
      switch_wait_cv_.notify_all();
    }
    acquire_locked(l);
  }

  // --- fifo ----------------------------------------------------------------------------------
  void grant_fifo_locked() {
    owner_ = self();
    interrupted_.store(nullptr, std::memory_order_relaxed);
  }

  // With mu_ held, by the holder: passes the lock to the head of the queue, or frees it.
  void hand_off_fifo_locked() {
    Waiter* w = head_;
    if (w == nullptr) {
      owner_ = nullptr;
      return;
    }
    dequeue_locked(*w);
    owner_ = w;  // ownership moves to w (its Waiter stands for its thread until it runs)
    interrupted_.store(nullptr, std::memory_order_relaxed);
    w->granted = true;
    w->cv.notify_one();  // under mu_: w may leave (and destroy its cv) as soon as mu_ is free
  }

  // With mu_ held (l) and the lock held by another thread: queues the caller at the tail and
  // returns once the lock has been handed to it. The first waiter without a timer becomes it.
  void wait_turn_fifo(std::unique_lock<std::mutex>& l) {
    Waiter me;
    enqueue_locked(me);
    while (!me.granted) {
      if (timer_ == nullptr) timer_ = &me;
      if (timer_ == &me) {
        if (!me.cv.wait_for(l, quantum_, [&] { return me.granted; }) && owner_ != nullptr) {
          interrupted_.store(owner_, std::memory_order_relaxed);  // the holder yields at its next check
        }
      } else {
        me.cv.wait(l, [&] { return me.granted || timer_ == nullptr; });
      }
    }
    owner_ = self();
    const void* handed = &me;  // an interrupt set between the hand-off and now names the Waiter
    interrupted_.compare_exchange_strong(handed, self(), std::memory_order_relaxed);
    if (timer_ == &me) {  // designate the next timer: the new head, if any
      timer_ = nullptr;
      if (head_ != nullptr) head_->cv.notify_one();
    }
  }

  const bool enabled_;
  const Kind kind_;
  const std::chrono::milliseconds quantum_;
  std::mutex plain_;  // Kind::mutex: the lock itself
  // ruby31 and fifo (all guarded by mu_; interrupted_ also read without it by the holder's check):
  mutable std::mutex mu_;
  const void* owner_ = nullptr;  // gvl.owner: the holding thread (fifo: or the Waiter handed it)
  Waiter* head_ = nullptr;       // gvl.waitq, oldest first
  Waiter* tail_ = nullptr;
  Waiter* timer_ = nullptr;      // gvl.timer: the waiter that times the holder's slice
  // ruby31's do_gvl_timer state: the deadline carried over an early wake-up (its static `abs`),
  // and whether the last timed wait ran out or the lock was taken uncontended (gvl.timer_err).
  std::chrono::steady_clock::time_point timer_deadline_{};
  bool timer_timed_out_ = true;
  bool need_yield_ = false;      // gvl.need_yield: a yielding holder waits for a waiter to acquire
  bool wait_yield_ = false;      // gvl.wait_yield: a yield is in progress
  std::condition_variable switch_cv_;       // gvl.switch_cond
  std::condition_variable switch_wait_cv_;  // gvl.switch_wait_cond
  // The thread whose timer interrupt is set (RUBY_VM_SET_TIMER_INTERRUPT on its ec), or nullptr.
  // One at a time: a second interrupt before the first is seen replaces it.
  std::atomic<const void*> interrupted_{nullptr};
};

}  // namespace cb::queue
