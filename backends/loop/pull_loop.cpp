// The backend-independent half of the pull loop: batches, the emit queues, signal and stop, and
// the factory. The backends (pull_loop_libev.cpp, pull_loop_epoll.cpp) supply poll and wake.
#include "backends/loop/pull_loop.h"

#include <cassert>

#include "backends/loop/pull_loop_detail.h"

namespace cb::loop {

namespace {
// Keys per batch and per emit queue reserved up front: one key per connection of the largest
// benchmark point, so that steady-state rounds never grow a vector.
constexpr std::size_t kInitialBatchKeys = detail::kExpectedWatchers;
}  // namespace

PullLoop::PullLoop() {
  batch_.reserve(kInitialBatchKeys);
  local_emits_.reserve(kInitialBatchKeys);
  ready_.reserve(kInitialBatchKeys);
  cross_emits_.reserve(kInitialBatchKeys);
}

PullLoop::~PullLoop() = default;

void PullLoop::emit(Key key) {
  if (std::this_thread::get_id() == loop_thread_.load(std::memory_order_relaxed)) {
    // The loop thread is running this code, so it is not blocked in poll: no wake is needed, and
    // has_pending_work() keeps the next round from blocking.
    local_emits_.push_back(key);
    return;
  }
  bool was_empty;
  {
    std::lock_guard lock(emit_mutex_);
    was_empty = cross_emits_.empty();
    cross_emits_.push_back(key);
    cross_emit_pending_.store(true, std::memory_order_seq_cst);  // read by has_pending_work()
  }
  // A non-empty queue has not been swapped out since the emit that made it non-empty, and that
  // emit's wake() already guarantees a round that takes this key too.
  if (was_empty) wake();
}

void PullLoop::signal() noexcept {
  signal_pending_.store(true, std::memory_order_seq_cst);  // read by has_pending_work()
  wake();
}

void PullLoop::stop() noexcept {
  stop_requested_.store(true, std::memory_order_seq_cst);  // read by has_pending_work()
  wake();
}

void PullLoop::bind_loop_thread() noexcept {
  const std::thread::id self = std::this_thread::get_id();
  const std::thread::id bound = loop_thread_.load(std::memory_order_relaxed);
  if (bound == self) return;
  assert(bound == std::thread::id{} && "a pull loop is driven by one thread for its lifetime");
  loop_thread_.store(self, std::memory_order_relaxed);
}

void PullLoop::run_round() {
  batch_.clear();
  batch_next_ = 0;
  ready_.clear();
  if (round_polls()) {
    poll_readiness();
    ++poll_rounds_;
  }

  // Emitted keys first (see the header for why). The swap leaves the old, empty batch buffer as
  // the new emit queue, so neither side allocates once both have grown to the load.
  if (cross_emit_pending_.load(std::memory_order_acquire)) {
    std::lock_guard lock(emit_mutex_);
    batch_.swap(cross_emits_);
    cross_emit_pending_.store(false, std::memory_order_relaxed);
  }
  if (!local_emits_.empty()) {
    batch_.insert(batch_.end(), local_emits_.begin(), local_emits_.end());
    local_emits_.clear();
  }
  batch_.insert(batch_.end(), ready_.begin(), ready_.end());
}

std::optional<Key> PullLoop::next_event_slow() {
  bind_loop_thread();
  for (;;) {
    if (stop_requested_.load(std::memory_order_acquire)) return std::nullopt;
    run_round();
    // A signal consumed here has done its job (the poll returned); it yields nullopt only if the
    // round found nothing. The plain load first keeps the locked exchange off unsignalled rounds.
    const bool signalled = signal_pending_.load(std::memory_order_relaxed) &&
                           signal_pending_.exchange(false, std::memory_order_acq_rel);
    if (!batch_.empty()) return batch_[batch_next_++];
    if (signalled) return std::nullopt;
    // Otherwise the round was empty (a stale wake-up, EINTR, a timer not yet due): poll again.
  }
}

std::unique_ptr<PullLoop> make_pull_loop(Backend backend) {
  switch (backend) {
    case Backend::libev:
      return detail::make_libev_pull_loop();
    case Backend::epoll:
      return detail::make_epoll_pull_loop();
  }
  return nullptr;  // unreachable for valid enumerators
}

std::optional<Backend> parse_backend(std::string_view name) noexcept {
  if (name == "libev") return Backend::libev;
  if (name == "epoll") return Backend::epoll;
  return std::nullopt;
}

std::string_view to_string(Backend backend) noexcept {
  switch (backend) {
    case Backend::libev:
      return "libev";
    case Backend::epoll:
      return "epoll";
  }
  return "unknown";
}

std::string_view to_string(WatchStatus status) noexcept {
  switch (status) {
    case WatchStatus::ok:
      return "ok";
    case WatchStatus::duplicate_key:
      return "duplicate_key";
    case WatchStatus::fd_busy:
      return "fd_busy";
    case WatchStatus::invalid_argument:
      return "invalid_argument";
    case WatchStatus::system_error:
      return "system_error";
  }
  return "unknown";
}

}  // namespace cb::loop
