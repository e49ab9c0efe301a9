// The pull loop over raw epoll: one epoll set, an eventfd to wake it, and a binary heap of timer
// deadlines whose nearest one bounds epoll_wait's timeout.
//
// I/O registration. Each fd has one kernel registration carrying the union of its watchers'
// interests (at most a readable and a writable key). When every active watcher on the fd is
// one-shot, the registration is EPOLLONESHOT: the kernel disarms it as it reports, so a fired
// one-shot watcher costs no system call, and re-watching it is one EPOLL_CTL_MOD on a
// registration that stays in the set. That is the cheapest correct scheme: DEL on fire and ADD
// on re-watch costs two calls, and keeping a level-triggered registration armed across a
// one-shot (libev's lazy scheme) reports the fd again if it is still readable when nobody
// watches it (as in the worker pool, while a worker reads), costing a disarm and a re-arm. A
// fired registration left in the set is harmless: if the application closes the fd, the kernel
// drops it, and the re-watch's MOD fails with ENOENT and falls back to ADD.
// A persistent watcher makes the registration level-triggered; a one-shot watcher sharing the
// fd with it is then retired by a MOD that drops its interest.
//
// Timers. A min-heap of (deadline, key, generation); unwatch and re-watch leave stale entries
// behind (lazy deletion), recognised by a generation mismatch and dropped when they surface or
// when they outnumber the live ones. Expired timers are reported after the fd events of the
// same round, in deadline order.
//
// Waking. A blocked epoll_wait is woken by writing the eventfd. To keep emits cheap the loop
// announces that it is about to block (wake_wanted_) and only then checks for pending work; a
// waker publishes its work and only then checks the announcement. Both stores and both loads are
// seq_cst, so at least one side sees the other's store (Dekker): a wake is never lost, and a
// waker that finds the loop busy makes no system call (libev's pipe_write_wanted /
// pipe_write_skipped protocol). seq_cst operations rather than fences, because ThreadSanitizer
// models the former and not the latter; on x86-64 the cost is the same locked instruction.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <system_error>

#include "backends/loop/pull_loop.h"
#include "backends/loop/pull_loop_detail.h"

namespace cb::loop::detail {
namespace {

using Clock = std::chrono::steady_clock;

// epoll data of the wake eventfd; fd registrations carry the fd, which is below 2^31.
constexpr std::uint64_t kWakeToken = std::numeric_limits<std::uint64_t>::max();
// Events taken per epoll_wait: the same as net::Reactor's kMaxEventsPerWait, so that this loop
// and the epoll reactor amortise the system call alike. Fds beyond it stay ready (level) or armed
// (one-shot) in the kernel and come back on the next round.
constexpr int kMaxEventsPerPoll = 512;
// Below this many heap entries stale timers are only dropped as they surface: compacting a small
// heap would cost more than the few stale entries it holds.
constexpr std::size_t kHeapCompactMinEntries = 64;

constexpr int interest_index(Interest interest) noexcept {
  return interest == Interest::readable ? 0 : 1;
}
constexpr std::uint32_t kInterestEvents[2] = {EPOLLIN, EPOLLOUT};

[[noreturn]] void die(const char* what) {
  // Only for errors that mean the loop's own kernel objects are broken (EBADF, EFAULT, EINVAL on
  // the epoll fd): carrying on would spin, and there is nothing a caller could do.
  std::perror(what);
  std::abort();
}

class EpollPullLoop final : public PullLoop {
 public:
  EpollPullLoop();
  ~EpollPullLoop() override;

  Backend backend() const noexcept override { return Backend::epoll; }
  WatchStatus watch_io(Key key, int fd, Interest interest, bool oneshot) override;
  WatchStatus watch_timer(Key key, std::chrono::microseconds after,
                          std::chrono::microseconds repeat) override;
  bool unwatch(Key key) override;
  std::size_t watcher_count() const noexcept override { return watches_.size(); }

 private:
  enum class Kind : std::uint8_t { io, timer };

  // What the key table holds for each active key.
  struct Watch {
    Kind kind = Kind::io;
    Interest interest = Interest::readable;  // io
    int fd = -1;                              // io
    std::uint64_t generation = 0;             // timer: matches its live heap entry
    Clock::duration repeat{};                 // timer: zero for one-shot
  };

  // Per fd: its watchers (index 0 readable, 1 writable) and what the kernel holds.
  struct FdState {
    Key keys[2] = {0, 0};
    bool active[2] = {false, false};
    bool oneshot[2] = {false, false};
    bool registered = false;  // the fd is (as far as we know) in the epoll set
    std::uint32_t armed = 0;  // the event mask the registration reports now; 0 if disarmed
  };

  struct TimerEntry {
    Clock::time_point deadline;
    Key key;
    std::uint64_t generation;
  };
  // Orders the heap so that the earliest deadline is at the front.
  static bool later(const TimerEntry& a, const TimerEntry& b) noexcept {
    return a.deadline > b.deadline;
  }

  void poll_readiness() override;
  void wake() noexcept override;

  FdState& fd_state(int fd);
  // Brings the kernel registration of fd in line with its active watchers. Returns false with
  // errno set if epoll_ctl refused; the recorded kernel state then matches what the kernel holds.
  bool sync_fd(int fd, FdState& f) noexcept;
  void on_fd_event(int fd, std::uint32_t events);
  void drain_wake_fd() noexcept;

  const Watch* live_timer(const TimerEntry& entry) const noexcept;
  int timeout_until_next_timer_ms();
  void fire_due_timers(Clock::time_point now);
  void compact_timers_if_stale();

  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::array<epoll_event, kMaxEventsPerPoll> events_{};
  KeyTable<Watch> watches_{kExpectedWatchers};
  std::vector<FdState> fds_;
  std::vector<TimerEntry> timers_;  // a heap under later()
  std::size_t live_timers_ = 0;
  std::uint64_t next_generation_ = 1;

  // The wake protocol (see the top of the file). wake_wanted_: the loop is in or entering
  // epoll_wait. wake_sent_: an eventfd write is in flight and not yet drained, so further wakers
  // need not write.
  alignas(64) std::atomic<bool> wake_wanted_{false};
  std::atomic<bool> wake_sent_{false};
};

EpollPullLoop::EpollPullLoop() {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    const int err = errno;
    ::close(epoll_fd_);
    throw std::system_error(err, std::generic_category(), "eventfd");
  }
  epoll_event ev{};
  ev.events = EPOLLIN;  // level-triggered: stays reported until drained
  ev.data.u64 = kWakeToken;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0) {
    const int err = errno;
    ::close(wake_fd_);
    ::close(epoll_fd_);
    throw std::system_error(err, std::generic_category(), "epoll_ctl(ADD eventfd)");
  }
  fds_.resize(kExpectedWatchers);
  timers_.reserve(kHeapCompactMinEntries);
}

EpollPullLoop::~EpollPullLoop() {
  ::close(wake_fd_);
  ::close(epoll_fd_);
}

EpollPullLoop::FdState& EpollPullLoop::fd_state(int fd) {
  const auto index = static_cast<std::size_t>(fd);
  if (index >= fds_.size()) fds_.resize(std::max(index + 1, fds_.size() * 2));
  return fds_[index];
}

bool EpollPullLoop::sync_fd(int fd, FdState& f) noexcept {
  const std::uint32_t interests = (f.active[0] ? EPOLLIN : 0u) | (f.active[1] ? EPOLLOUT : 0u);
  if (interests == 0) {
    if (f.armed == 0) return true;  // disarmed (fired one-shot) or unregistered: nothing reports
    // A level-triggered or still-armed registration nobody watches: remove it. If the fd was
    // closed already, the kernel has removed it too, so a failure leaves the same state.
    const bool ok = epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr) == 0;
    f.registered = false;
    f.armed = 0;
    return ok;
  }
  const bool all_oneshot = (!f.active[0] || f.oneshot[0]) && (!f.active[1] || f.oneshot[1]);
  const std::uint32_t want = interests | (all_oneshot ? EPOLLONESHOT : 0u);
  if (f.registered && f.armed == want) return true;

  epoll_event ev{};
  ev.events = want;
  ev.data.u64 = static_cast<std::uint64_t>(fd);
  if (f.registered) {
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev) == 0) {
      f.armed = want;
      return true;
    }
    if (errno != ENOENT) return false;
    f.registered = false;  // the fd was closed and its number reused: register the new file
    f.armed = 0;
  }
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    // EEXIST: registered behind our back (an earlier DEL failed); take it over.
    if (errno != EEXIST || epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev) != 0) return false;
  }
  f.registered = true;
  f.armed = want;
  return true;
}

WatchStatus EpollPullLoop::watch_io(Key key, int fd, Interest interest, bool oneshot) {
  if (fd < 0) return WatchStatus::invalid_argument;
  if (watches_.find(key) != nullptr) return WatchStatus::duplicate_key;
  FdState& f = fd_state(fd);
  const int i = interest_index(interest);
  if (f.active[i]) return WatchStatus::fd_busy;

  f.keys[i] = key;
  f.active[i] = true;
  f.oneshot[i] = oneshot;
  if (!sync_fd(fd, f)) {
    const int err = errno;
    f.active[i] = false;
    errno = err;
    return WatchStatus::system_error;
  }
  Watch w;
  w.kind = Kind::io;
  w.interest = interest;
  w.fd = fd;
  watches_.insert(key, w);
  return WatchStatus::ok;
}

WatchStatus EpollPullLoop::watch_timer(Key key, std::chrono::microseconds after,
                                       std::chrono::microseconds repeat) {
  if (after.count() < 0 || repeat.count() < 0) return WatchStatus::invalid_argument;
  if (watches_.find(key) != nullptr) return WatchStatus::duplicate_key;

  Watch w;
  w.kind = Kind::timer;
  w.generation = next_generation_++;
  w.repeat = repeat;
  watches_.insert(key, w);
  timers_.push_back(TimerEntry{Clock::now() + after, key, w.generation});
  std::push_heap(timers_.begin(), timers_.end(), later);
  ++live_timers_;
  return WatchStatus::ok;
}

bool EpollPullLoop::unwatch(Key key) {
  const Watch* found = watches_.find(key);
  if (found == nullptr) return false;
  const Watch w = *found;
  watches_.erase(key);
  if (w.kind == Kind::io) {
    FdState& f = fds_[static_cast<std::size_t>(w.fd)];
    f.active[interest_index(w.interest)] = false;
    if (!sync_fd(w.fd, f)) {
      // Only possible if the application closed the fd before unwatching; the kernel dropped the
      // registration with the fd, so record it as gone.
      f.registered = false;
      f.armed = 0;
    }
  } else {
    --live_timers_;  // its heap entry is now stale
    compact_timers_if_stale();
  }
  return true;
}

void EpollPullLoop::poll_readiness() {
  // Announce, then check (see the top of the file).
  wake_wanted_.store(true, std::memory_order_seq_cst);
  const int timeout_ms = has_pending_work() ? 0 : timeout_until_next_timer_ms();
  int n = epoll_wait(epoll_fd_, events_.data(), kMaxEventsPerPoll, timeout_ms);
  wake_wanted_.store(false, std::memory_order_relaxed);
  if (n < 0) {
    if (errno != EINTR) die("epoll_wait");
    n = 0;  // an empty round; next_event polls again
  }
  for (int i = 0; i < n; ++i) {
    const epoll_event& ev = events_[static_cast<std::size_t>(i)];
    if (ev.data.u64 == kWakeToken) {
      drain_wake_fd();
    } else {
      on_fd_event(static_cast<int>(ev.data.u64), ev.events);
    }
  }
  if (!timers_.empty()) fire_due_timers(Clock::now());
}

void EpollPullLoop::on_fd_event(int fd, std::uint32_t events) {
  FdState& f = fds_[static_cast<std::size_t>(fd)];
  if ((f.armed & EPOLLONESHOT) != 0) f.armed = 0;  // the kernel disarmed it as it reported
  const bool error = (events & (EPOLLERR | EPOLLHUP)) != 0;
  for (int i = 0; i < 2; ++i) {
    if (!f.active[i] || (!error && (events & kInterestEvents[i]) == 0)) continue;
    ready_.push_back(f.keys[i]);
    if (f.oneshot[i]) {
      f.active[i] = false;
      watches_.erase(f.keys[i]);
    }
  }
  // Re-arm a surviving watcher of a one-shot registration, or drop a fired one-shot's interest
  // from a level-triggered one; a no-op in the common cases (nothing left, or nothing changed).
  if (!sync_fd(fd, f)) {
    // Cannot re-arm (the fd was closed under an active watcher): report the survivors once and
    // drop them, as for an fd the kernel refuses, so the application meets the error in its I/O.
    for (int i = 0; i < 2; ++i) {
      if (!f.active[i]) continue;
      ready_.push_back(f.keys[i]);
      f.active[i] = false;
      watches_.erase(f.keys[i]);
    }
    f.registered = false;
    f.armed = 0;
  }
}

void EpollPullLoop::drain_wake_fd() noexcept {
  // Read first, then clear the flag. The invariant: while wake_sent_ is true, the eventfd is
  // readable or a waker's write is on its way. Clearing before the read broke it: a waker that
  // took the cleared flag and wrote before the read had its write consumed here, the flag stayed
  // true with the eventfd empty, and every later waker (stop() included) skipped its write while
  // the loop blocked in epoll_wait for good. In this order a waker that takes the flag after the
  // clear writes into a drained eventfd (the next round sees it), and one that finds it still
  // true before the clear has published its work before the clear, so this round's run_round()
  // or the next has_pending_work() sees that work.
  std::uint64_t count;
  while (::read(wake_fd_, &count, sizeof count) < 0 && errno == EINTR) {
  }
  // EAGAIN (already drained, or a write not yet landed) is fine: being woken was the point, and
  // a write landing after this read leaves the eventfd readable for the next round.
  wake_sent_.store(false, std::memory_order_seq_cst);
}

void EpollPullLoop::wake() noexcept {
  const int saved_errno = errno;  // wake() may run in a signal handler
  // The caller published its work with a seq_cst store. Not in or entering epoll_wait: the loop
  // checks has_pending_work() before it blocks, and will see that work.
  if (wake_wanted_.load(std::memory_order_seq_cst) &&
      !wake_sent_.exchange(true, std::memory_order_seq_cst)) {
    const std::uint64_t one = 1;
    while (::write(wake_fd_, &one, sizeof one) < 0 && errno == EINTR) {
    }
    // EAGAIN means the counter is saturated, i.e. already readable: the wake is delivered.
  }
  errno = saved_errno;
}

const EpollPullLoop::Watch* EpollPullLoop::live_timer(const TimerEntry& entry) const noexcept {
  const Watch* w = watches_.find(entry.key);
  if (w == nullptr || w->kind != Kind::timer || w->generation != entry.generation) return nullptr;
  return w;
}

int EpollPullLoop::timeout_until_next_timer_ms() {
  while (!timers_.empty() && live_timer(timers_.front()) == nullptr) {
    std::pop_heap(timers_.begin(), timers_.end(), later);
    timers_.pop_back();
  }
  if (timers_.empty()) return -1;  // block until readiness or a wake
  const Clock::duration remaining = timers_.front().deadline - Clock::now();
  if (remaining <= Clock::duration::zero()) return 0;
  // Round up: waking before the deadline would cost an empty round and a second epoll_wait.
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(remaining).count();
  return ms > INT_MAX ? INT_MAX : static_cast<int>(ms);
}

void EpollPullLoop::fire_due_timers(Clock::time_point now) {
  // Bounded: a repeating timer is rescheduled strictly after `now`, so each live timer fires at
  // most once per round.
  while (!timers_.empty() && timers_.front().deadline <= now) {
    std::pop_heap(timers_.begin(), timers_.end(), later);
    const TimerEntry entry = timers_.back();
    timers_.pop_back();
    const Watch* w = live_timer(entry);
    if (w == nullptr) continue;  // stale: unwatched or re-watched since
    ready_.push_back(entry.key);
    if (w->repeat > Clock::duration::zero()) {
      Clock::time_point next = entry.deadline + w->repeat;
      if (next <= now) next = now + w->repeat;  // fell behind: skip the missed ticks
      timers_.push_back(TimerEntry{next, entry.key, entry.generation});
      std::push_heap(timers_.begin(), timers_.end(), later);
    } else {
      watches_.erase(entry.key);
      --live_timers_;
    }
  }
}

void EpollPullLoop::compact_timers_if_stale() {
  // Stale entries more than half the heap: drop them all at once (O(n), in place, so amortised
  // over the unwatches that made them stale, and no allocation).
  if (timers_.size() < kHeapCompactMinEntries || timers_.size() <= 2 * live_timers_) return;
  std::erase_if(timers_, [this](const TimerEntry& e) { return live_timer(e) == nullptr; });
  std::make_heap(timers_.begin(), timers_.end(), later);
}

}  // namespace

std::unique_ptr<PullLoop> make_epoll_pull_loop() { return std::make_unique<EpollPullLoop>(); }

}  // namespace cb::loop::detail
