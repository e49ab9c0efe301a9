// The pull loop over libev: Ever's own design (ext/ever/loop.c, watcher.c). Its own ev_loop per
// PullLoop; an ev_io or ev_timer per watcher whose callback appends the key to the round's ready
// list; an ev_async to wake a blocked ev_run from any thread; one ev_run(EVRUN_ONCE) per round.
// One-shot means what it means in Ever: the callback stops the watcher and frees its key.
//
// Re-arming a one-shot watch costs no system call: a fired one-shot watcher is parked (stopped,
// its key free to watch again, still holding its fd and interest) and, when the same key watches
// the same fd and interest again, restarted with ev_io_start alone. ev_io_init would mark the fd
// as possibly a new file (EV__IOFDSET), which makes libev re-register it with epoll_ctl on every
// re-arm: one system call per request, a third of pull-loop's system calls when pipelined. libev
// keeps the fd registered while its watcher is stopped (it disarms lazily, on the next event), so
// the restart is a user-space flag. A parked watch ends on unwatch(key) (every close goes through
// it: Served::close), or when another watch takes its watcher; a key that watches another fd or
// interest gets a freshly initialised watcher.
//
// Differences from Ever, and why:
// - the ev_async stays referenced, so a round with no active watchers blocks until an emit,
//   signal or stop (Ever unreferences it, and its next_event returns nil at once instead);
// - watch_timer refreshes libev's cached time first, so `after` counts from the call and not
//   from the start of the last round (the application may have run long since).
#include <ev.h>

#include <algorithm>
#include <cerrno>
#include <deque>
#include <system_error>

#include "backends/loop/pull_loop.h"
#include "backends/loop/pull_loop_detail.h"

namespace cb::loop::detail {
namespace {

constexpr double kSecondsPerMicrosecond = 1e-6;

class LibevPullLoop final : public PullLoop {
 public:
  LibevPullLoop();
  ~LibevPullLoop() override;

  Backend backend() const noexcept override { return Backend::libev; }
  WatchStatus watch_io(Key key, int fd, Interest interest, bool oneshot) override;
  WatchStatus watch_timer(Key key, std::chrono::microseconds after,
                          std::chrono::microseconds repeat) override;
  bool unwatch(Key key) override;
  std::size_t watcher_count() const noexcept override { return active_.size() - parked_; }

 private:
  enum class Kind : std::uint8_t { io, timer };

  // One pooled watcher. libev holds pointers to io/timer while they are active, so watchers live
  // in a deque (stable addresses) and are recycled through free_ rather than freed.
  struct Watcher {
    ev_io io;
    ev_timer timer;
    LibevPullLoop* owner;
    Key key;
    int fd;
    Kind kind;
    Interest interest;
    bool oneshot;
    bool parked;  // a fired one-shot io watch kept under its key for a cheap re-arm (not active)
  };

  void poll_readiness() override;
  void wake() noexcept override;

  Watcher* take_watcher();
  // Forgets w's key and fd interest and returns w to the pool; w must already be stopped.
  void release(Watcher* w) noexcept;
  // A fired one-shot io watcher (stopped): frees its key for watch_io and its fd interest, keeps it.
  void park(Watcher* w) noexcept;
  static std::uint8_t interest_bit(Interest interest) noexcept {
    return interest == Interest::readable ? 1 : 2;
  }

  static void on_io(struct ev_loop* loop, ev_io* io, int revents);
  static void on_timer(struct ev_loop* loop, ev_timer* timer, int revents);
  static void on_wake(struct ev_loop*, ev_async*, int) {}  // waking ev_run is its whole job

  struct ev_loop* loop_ = nullptr;
  ev_async wake_async_;
  std::deque<Watcher> pool_;
  std::vector<Watcher*> free_;
  KeyTable<Watcher*> active_{kExpectedWatchers};
  // Per fd, the interests (interest_bit) held by an active watcher: enforces one key per
  // (fd, interest), as the epoll backend must.
  std::vector<std::uint8_t> fd_interests_;
  std::size_t parked_ = 0;  // watchers in active_ that are parked
  // Per (fd, interest), the watcher parked there, if any: at most one, so watches under fresh keys
  // (the Ruby extension's) park a bounded number of watchers, one per descriptor and interest.
  std::vector<Watcher*> parked_at_;
  std::size_t park_slot(const Watcher* w) const noexcept {
    return static_cast<std::size_t>(w->fd) * 2 + (w->interest == Interest::readable ? 0 : 1);
  }
};

LibevPullLoop::LibevPullLoop() {
  // EVFLAG_NOSIGMASK as in Ever: this loop has no signal watchers, so libev need not touch the
  // signal mask. EVFLAG_AUTO backend selection picks epoll on Linux.
  loop_ = ev_loop_new(EVFLAG_NOSIGMASK);
  if (loop_ == nullptr) {
    throw std::system_error(errno, std::generic_category(), "ev_loop_new failed");
  }
  ev_async_init(&wake_async_, on_wake);
  ev_async_start(loop_, &wake_async_);
  free_.reserve(kExpectedWatchers);
  fd_interests_.resize(kExpectedWatchers);
}

LibevPullLoop::~LibevPullLoop() {
  ev_async_stop(loop_, &wake_async_);
  ev_loop_destroy(loop_);  // watchers are plain memory in pool_; libev keeps no other reference
}

LibevPullLoop::Watcher* LibevPullLoop::take_watcher() {
  if (!free_.empty()) {
    Watcher* w = free_.back();
    free_.pop_back();
    return w;
  }
  // Keep room in free_ for every watcher, so that release() never allocates; doubling keeps
  // the growth amortised.
  if (free_.capacity() < pool_.size() + 1) free_.reserve(2 * (pool_.size() + 1));
  Watcher& w = pool_.emplace_back();
  w.owner = this;
  return &w;
}

void LibevPullLoop::release(Watcher* w) noexcept {
  active_.erase(w->key);
  if (w->parked) {  // its fd interest was given up when it was parked
    w->parked = false;
    --parked_;
    parked_at_[park_slot(w)] = nullptr;
  } else if (w->kind == Kind::io) {
    fd_interests_[static_cast<std::size_t>(w->fd)] &= static_cast<std::uint8_t>(~interest_bit(w->interest));
  }
  free_.push_back(w);  // within the capacity take_watcher reserved: no allocation
}

void LibevPullLoop::park(Watcher* w) noexcept {
  fd_interests_[static_cast<std::size_t>(w->fd)] &= static_cast<std::uint8_t>(~interest_bit(w->interest));
  const std::size_t slot = park_slot(w);
  if (slot >= parked_at_.size()) parked_at_.resize(std::max(slot + 1, parked_at_.size() * 2), nullptr);
  if (parked_at_[slot] != nullptr) release(parked_at_[slot]);  // one parked watcher per slot
  parked_at_[slot] = w;
  w->parked = true;
  ++parked_;
}

WatchStatus LibevPullLoop::watch_io(Key key, int fd, Interest interest, bool oneshot) {
  if (fd < 0) return WatchStatus::invalid_argument;
  Watcher** found = active_.find(key);
  if (found != nullptr && !(*found)->parked) return WatchStatus::duplicate_key;
  const auto index = static_cast<std::size_t>(fd);
  if (index >= fd_interests_.size()) fd_interests_.resize(std::max(index + 1, fd_interests_.size() * 2));
  if ((fd_interests_[index] & interest_bit(interest)) != 0) return WatchStatus::fd_busy;
  if (found != nullptr) {
    Watcher* p = *found;
    if (p->fd == fd && p->interest == interest) {  // the re-arm of a fired one-shot: no epoll_ctl
      p->parked = false;
      --parked_;
      parked_at_[park_slot(p)] = nullptr;
      p->oneshot = oneshot;
      ev_io_start(loop_, &p->io);
      fd_interests_[index] |= interest_bit(interest);
      return WatchStatus::ok;
    }
    release(p);  // another fd or interest under this key: a fresh watcher below
  }

  Watcher* w = take_watcher();
  w->key = key;
  w->fd = fd;
  w->kind = Kind::io;
  w->interest = interest;
  w->oneshot = oneshot;
  w->parked = false;
  ev_io_init(&w->io, on_io, fd, interest == Interest::readable ? EV_READ : EV_WRITE);
  w->io.data = w;
  ev_io_start(loop_, &w->io);
  active_.insert(key, w);
  fd_interests_[index] |= interest_bit(interest);
  return WatchStatus::ok;
}

WatchStatus LibevPullLoop::watch_timer(Key key, std::chrono::microseconds after,
                                       std::chrono::microseconds repeat) {
  if (after.count() < 0 || repeat.count() < 0) return WatchStatus::invalid_argument;
  if (Watcher** found = active_.find(key); found != nullptr) {
    if (!(*found)->parked) return WatchStatus::duplicate_key;
    release(*found);
  }

  Watcher* w = take_watcher();
  w->key = key;
  w->fd = -1;
  w->kind = Kind::timer;
  w->interest = Interest::readable;
  w->oneshot = repeat.count() == 0;
  w->parked = false;
  // libev measures `after` from its cached loop time; refresh it so `after` counts from now.
  // One clock read, and timers are not on the per-event path.
  ev_now_update(loop_);
  ev_timer_init(&w->timer, on_timer, static_cast<double>(after.count()) * kSecondsPerMicrosecond,
                static_cast<double>(repeat.count()) * kSecondsPerMicrosecond);
  w->timer.data = w;
  ev_timer_start(loop_, &w->timer);
  active_.insert(key, w);
  return WatchStatus::ok;
}

bool LibevPullLoop::unwatch(Key key) {
  Watcher** found = active_.find(key);
  if (found == nullptr) return false;
  Watcher* w = *found;
  if (w->parked) {  // its one-shot already fired: forget it, and say so
    release(w);
    return false;
  }
  if (w->kind == Kind::io) {
    ev_io_stop(loop_, &w->io);
  } else {
    ev_timer_stop(loop_, &w->timer);
  }
  release(w);
  return true;
}

void LibevPullLoop::on_io(struct ev_loop* loop, ev_io* io, int revents) {
  auto* w = static_cast<Watcher*>(io->data);
  LibevPullLoop& self = *w->owner;
  self.ready_.push_back(w->key);
  // EV_ERROR: libev could not watch the fd and has stopped the watcher itself; the key is
  // reported once so that the application meets the error in its I/O.
  if (w->oneshot || (revents & EV_ERROR) != 0) {
    ev_io_stop(loop, io);  // no-op if libev already stopped it
    if ((revents & EV_ERROR) != 0) self.release(w);
    else self.park(w);
  }
}

void LibevPullLoop::on_timer(struct ev_loop*, ev_timer* timer, int) {
  auto* w = static_cast<Watcher*>(timer->data);
  LibevPullLoop& self = *w->owner;
  self.ready_.push_back(w->key);
  if (w->oneshot) self.release(w);  // libev stops a non-repeating timer before calling back
}

void LibevPullLoop::poll_readiness() {
  // libev's ev_async_send and ev_run implement the announce-then-check protocol themselves
  // (pipe_write_wanted / pipe_write_skipped), so a wake that races this check is not lost.
  ev_run(loop_, has_pending_work() ? EVRUN_NOWAIT : EVRUN_ONCE);
}

void LibevPullLoop::wake() noexcept { ev_async_send(loop_, &wake_async_); }

}  // namespace

std::unique_ptr<PullLoop> make_libev_pull_loop() { return std::make_unique<LibevPullLoop>(); }

}  // namespace cb::loop::detail
