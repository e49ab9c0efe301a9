// The pull loop: Ever's callback-less event loop (github.com/digital-fabric/ever), in C++.
//
// Events are application-chosen keys (an fd, a pointer value, any 64-bit number) that the
// application pulls with next_event() or each(); nothing is registered as a handler. A watcher
// produces its key when its fd is ready or its timer expires; emit() produces a key directly.
//
// Rounds and batches. When the current batch is used up, next_event() runs one poll round: it
// asks the backend for readiness (blocking only if nothing is pending), then builds the next
// batch in this order:
//   1. keys emitted from other threads, in the order their emit() calls took the queue lock;
//   2. keys the loop thread emitted itself, in call order;
//   3. readiness keys in the order the backend reports them (epoll: fd events in epoll_wait's
//      order, then expired timers in deadline order; libev: its pending-queue order).
// Emitted keys come first because they were produced before the poll that found the readiness
// events; this is also the order Ever's own test_emit expects. A key emitted while a batch is
// being handed out goes to the next batch, never to the current one (double-buffered queue).
// When a round polls is the loop's RoundOrder: by default (poll_every_round), unlike Ever, a
// round always polls, even when emitted keys are queued (without waiting then), so a steady
// stream of emits cannot starve I/O readiness; with emits_first, as Ever's Loop#each and
// #next_event do, a round with emitted keys queued hands them out without polling. The order
// shows in system calls: a key re-watched through an emitted command (Ever's examples) is
// stopped when it fires and started again when the command comes back; libev registers the fd
// only at a poll, so a poll in between sees no interest and the restart costs an epoll_ctl
// (an ADD answered EEXIST) that Ever's order never makes.
//
// Threads. The loop thread is the first thread that calls next_event() or each(); it stays the
// loop thread for the loop's lifetime. watch_io, watch_timer, unwatch, next_event, each,
// watcher_count and poll_rounds are loop-thread only. emit() is callable from any thread;
// signal(), stop() and stopped() from any thread and also from a POSIX signal handler (they take
// no lock and allocate nothing). Before the loop is destroyed, other threads must have stopped
// calling it.
//
// Errors. watch_io/watch_timer return a WatchStatus and never throw: a server re-arms a watch
// for every request, so that is a hot path, and a duplicate key is an outcome it can handle.
// Construction failures (no epoll fd, no libev loop) throw std::system_error from make_pull_loop.
#pragma once

#include "backends/loop/backend.h"
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <vector>

namespace cb::loop {

// An event identifier chosen by the application: typically an fd or a pointer value.
using Key = std::uint64_t;

// What an I/O watcher waits for (Ever's read_write flag: false = readable, true = writable).
enum class Interest : std::uint8_t { readable, writable };

// Outcome of watch_io / watch_timer. On anything but ok, no watcher was created.
enum class [[nodiscard]] WatchStatus : std::uint8_t {
  ok,
  duplicate_key,     // the key already names an active watcher (Ever raises RuntimeError here)
  fd_busy,           // another active key already watches this fd for this interest
  invalid_argument,  // negative fd or negative duration
  system_error,      // epoll_ctl refused the fd (errno says why); epoll backend only, see watch_io
};

// Which implementation runs the loop (Backend, backend.h) is chosen at run time.

// Returns the backend named exactly "libev" or "epoll", or nullopt for any other text.
std::optional<Backend> parse_backend(std::string_view name) noexcept;
// Returns "libev" or "epoll": the spelling parse_backend accepts.
std::string_view to_string(Backend backend) noexcept;
// Returns the enumerator's name, e.g. "duplicate_key", for diagnostics.
std::string_view to_string(WatchStatus status) noexcept;

// When a round polls for readiness (see "Rounds and batches" above).
enum class RoundOrder : std::uint8_t {
  poll_every_round,  // every round polls (without waiting when keys are queued); the default
  emits_first,       // Ever's: a round with emitted keys queued hands them out without polling
};

class PullLoop {
 public:
  virtual ~PullLoop();
  PullLoop(const PullLoop&) = delete;
  PullLoop& operator=(const PullLoop&) = delete;

  // Returns which implementation this is.
  virtual Backend backend() const noexcept = 0;

  // Watches fd for `interest`; the key becomes an event each round the fd is ready (level-
  // triggered), or only the first time if oneshot, after which the watcher is gone and the key
  // free to re-watch. Error and hang-up conditions wake both interests. At most one active key
  // per (fd, interest) (fd_busy otherwise). Does not own fd, which must be open: unwatch armed
  // watchers before closing their fd; a one-shot watcher that has fired needs nothing, unless its
  // key will watch again (libev re-arms a fired one-shot of the same key, fd and interest without
  // re-registering the fd, so unwatch the key before its fd closes if it may come back); a closed
  // fd gives system_error (EBADF) on epoll but trips an assertion inside libev. A regular file
  // (which epoll refuses) gives system_error (EPERM) on epoll; libev treats it as always ready.
  virtual WatchStatus watch_io(Key key, int fd, Interest interest, bool oneshot) = 0;

  // Watches a timer that first fires `after` from now, then every `repeat` (0 = one-shot: the
  // watcher is gone after it fires). A repeating timer that falls behind skips the missed ticks
  // rather than firing them in a burst.
  virtual WatchStatus watch_timer(Key key, std::chrono::microseconds after,
                                  std::chrono::microseconds repeat) = 0;

  // Stops the watcher named by key. Returns false if no watcher was active under that key. An
  // event the watcher already put in the current batch is still handed out.
  virtual bool unwatch(Key key) = 0;

  // Returns the number of active watchers (fired one-shot watchers are no longer counted).
  virtual std::size_t watcher_count() const noexcept = 0;

  // Queues key as an event for the next batch and wakes a loop blocked in poll. From the loop
  // thread it takes no lock and makes no system call; from another thread it takes a mutex and
  // wakes the loop only if the queue was empty. May allocate while the queue grows (warm-up).
  // Not async-signal-safe (use stop() or signal() from signal handlers).
  void emit(Key key);

  // Wakes a loop blocked in poll without an event: the next_event() call whose round this wake
  // ends returns nullopt if that round found no events. Async-signal-safe.
  void signal() noexcept;

  // Makes each() return and next_event() return nullopt instead of polling, for good: a stopped
  // loop stays stopped. Wakes a blocked poll. Async-signal-safe.
  void stop() noexcept;

  // Returns true once stop() has been called.
  bool stopped() const noexcept { return stop_requested_.load(std::memory_order_acquire); }

  // Returns the next key of the current batch, or runs poll rounds until one yields events.
  // Blocks until an event, a signal() or stop(); returns nullopt only after signal() (if the
  // round it woke found nothing) or once stopped and the current batch is used up. Keys still in
  // the current batch are handed out even after stop().
  // True when the current batch is used up, so the next next_event() runs a poll round (which may
  // block). The worker pool's GVL emulation releases its lock around exactly those calls, as Ever
  // releases Ruby's lock around ev_run. Loop thread.
  bool batch_exhausted() const noexcept { return batch_next_ >= batch_.size(); }

  std::optional<Key> next_event() {
    if (batch_next_ < batch_.size()) [[likely]] return batch_[batch_next_++];
    return next_event_slow();
  }

  // Calls fn(key) for every event until stop(), checked before each event (a stop() from inside
  // fn leaves the rest of the batch to later next_event() calls). fn may call any loop method.
  template <class Fn>
  void each(Fn&& fn) {
    while (!stopped()) {
      if (std::optional<Key> key = next_event()) fn(*key);
    }
  }

  // Returns how many rounds have polled: events per poll is a cost measure for benchmarks.
  std::uint64_t poll_rounds() const noexcept { return poll_rounds_; }

  // Sets when rounds poll (RoundOrder). Loop thread; takes effect from the next round.
  void set_round_order(RoundOrder order) noexcept { order_ = order; }

  // True when the next round will poll (it may block): the current batch is used up and either
  // every round polls or no emitted key is queued. With emits_first and keys queued the round
  // only hands them out, so a caller that releases a lock around blocking rounds (the Ruby
  // extension's GVL, as Ever releases it only around ev_run) may keep it. Loop thread.
  bool next_round_polls() const noexcept { return batch_exhausted() && round_polls(); }

 protected:
  PullLoop();

  // Returns true if the next round has work without any readiness: queued emits, a signal or a
  // stop. A backend must not block in poll when this is true; it calls it after announcing that
  // it is about to block. The loads are seq_cst, as are the stores in emit/signal/stop that
  // precede wake(): the two halves of the epoll backend's wake protocol (pull_loop_epoll.cpp).
  bool has_pending_work() const noexcept {
    return !local_emits_.empty() || cross_emit_pending_.load(std::memory_order_seq_cst) ||
           signal_pending_.load(std::memory_order_seq_cst) ||
           stop_requested_.load(std::memory_order_seq_cst);
  }

  // True when an emitted key waits for the next batch (from this thread or another).
  bool emits_queued() const noexcept {
    return !local_emits_.empty() || cross_emit_pending_.load(std::memory_order_acquire);
  }

  // True when a round starting now polls (RoundOrder).
  bool round_polls() const noexcept { return order_ == RoundOrder::poll_every_round || !emits_queued(); }

  // Readiness keys found by the current round's poll_readiness, in report order. Loop thread.
  std::vector<Key> ready_;

 private:
  // Polls once and appends ready keys to ready_: may block until readiness, a timer or wake(),
  // but must not block when has_pending_work() (checked after the backend's announcement).
  virtual void poll_readiness() = 0;
  // Makes a blocked (or about to block) poll_readiness return soon. Called after a seq_cst store
  // that has_pending_work() reads. Any thread; async-signal-safe.
  virtual void wake() noexcept = 0;

  std::optional<Key> next_event_slow();
  void run_round();
  void bind_loop_thread() noexcept;

  // Loop-thread state, read on every event.
  std::vector<Key> batch_;          // the batch being handed out
  std::size_t batch_next_ = 0;      // index of the next key of batch_ to hand out
  std::vector<Key> local_emits_;    // keys emitted by the loop thread for the next batch
  std::uint64_t poll_rounds_ = 0;
  RoundOrder order_ = RoundOrder::poll_every_round;

  // Written rarely (once, or on stop/signal), read by the loop thread every event and by
  // emitters every emit; kept off the emitters' hot cache line below. 64 = x86-64 line size.
  alignas(64) std::atomic<bool> stop_requested_{false};
  std::atomic<bool> signal_pending_{false};
  std::atomic<std::thread::id> loop_thread_{};  // unset until the first next_event/each

  // Cross-thread emit queue: written by emitters under the mutex, swapped out by the loop.
  alignas(64) std::mutex emit_mutex_;
  std::vector<Key> cross_emits_;                // guarded by emit_mutex_
  std::atomic<bool> cross_emit_pending_{false};  // hint: cross_emits_ is non-empty
};

// Creates a loop with its own kernel objects (never libev's default loop). Throws
// std::system_error if the kernel or libev refuses to create them.
std::unique_ptr<PullLoop> make_pull_loop(Backend backend);

}  // namespace cb::loop
