#include "backends/net/reactor.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

namespace cb::net {

Reactor::Reactor() : events_(kMaxEventsPerWait) {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  wakefd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epfd_ >= 0 && wakefd_ >= 0) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr;  // nullptr marks the wake-up descriptor
    epoll_ctl(epfd_, EPOLL_CTL_ADD, wakefd_, &ev);
  }
}

Reactor::~Reactor() {
  if (wakefd_ >= 0) ::close(wakefd_);
  if (epfd_ >= 0) ::close(epfd_);
}

static std::uint32_t mask(bool readable, bool writable) {
  return (readable ? EPOLLIN : 0u) | (writable ? EPOLLOUT : 0u) | EPOLLRDHUP;
}

bool Reactor::add(int fd, Handler* h, bool readable, bool writable) {
  epoll_event ev{};
  ev.events = mask(readable, writable);
  ev.data.ptr = h;
  return epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) == 0;
}

bool Reactor::modify(int fd, Handler* h, bool readable, bool writable) {
  epoll_event ev{};
  ev.events = mask(readable, writable);
  ev.data.ptr = h;
  return epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) == 0;
}

void Reactor::remove(int fd) { epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr); }

void Reactor::run(std::chrono::milliseconds tick, const std::function<void()>& on_tick) {
  using clock = std::chrono::steady_clock;
  auto next_tick = clock::now() + tick;
  while (!stop_.load(std::memory_order_acquire)) {
    auto now = clock::now();
    int timeout_ms = 0;
    if (next_tick > now) {
      timeout_ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(next_tick - now).count()) + 1;
    }
    int n = epoll_wait(epfd_, events_.data(), kMaxEventsPerWait, timeout_ms);
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < n; ++i) {
      auto* h = static_cast<Handler*>(events_[i].data.ptr);
      std::uint32_t ev = events_[i].events;
      if (h == nullptr) {
        std::uint64_t v;
        [[maybe_unused]] ssize_t r = ::read(wakefd_, &v, sizeof v);
        continue;
      }
      bool alive = true;
      if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) alive = h->on_readable();
      if (alive && (ev & EPOLLOUT)) h->on_writable();
    }
    if (clock::now() >= next_tick) {
      on_tick();
      next_tick = clock::now() + tick;
    }
  }
}

void Reactor::stop() {
  stop_.store(true, std::memory_order_release);
  std::uint64_t one = 1;
  [[maybe_unused]] ssize_t r = ::write(wakefd_, &one, sizeof one);
}

}  // namespace cb::net
