// A level-triggered epoll reactor with per-descriptor handlers: EventMachine's Reactor pattern.
// One thread runs it; handlers are called on readiness, by event (on_readable, on_writable).
#pragma once
#include <sys/epoll.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <vector>

namespace cb::net {

class Reactor {
 public:
  class Handler {
   public:
    virtual ~Handler() = default;
    // Called when the descriptor is readable, hung up or in error. Returns false if the handler
    // removed and destroyed itself (the reactor then skips on_writable for this event).
    virtual bool on_readable() = 0;
    // Called when the descriptor is writable. Returns as on_readable.
    virtual bool on_writable() { return true; }
  };

  Reactor();
  ~Reactor();
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;

  // Registers fd for readability (and writability if asked). Returns false on failure (errno set).
  bool add(int fd, Handler* h, bool readable, bool writable);
  // Changes fd's interest set. Returns false on failure.
  bool modify(int fd, Handler* h, bool readable, bool writable);
  // Unregisters fd. Closing the fd also does this; call it before closing to keep it explicit.
  void remove(int fd);

  // Dispatches events until stop(). Calls on_tick about every `tick` (idle sweeps, retries).
  void run(std::chrono::milliseconds tick, const std::function<void()>& on_tick);
  // Makes run() return soon. Callable from any thread.
  void stop();

  bool ok() const { return epfd_ >= 0 && wakefd_ >= 0; }

 private:
  // Events taken per epoll_wait. More than the connections of most points, and a batch this size
  // amortises the system call without delaying the tick by much.
  static constexpr int kMaxEventsPerWait = 512;

  int epfd_ = -1;
  int wakefd_ = -1;
  std::atomic<bool> stop_{false};
  std::vector<epoll_event> events_;
};

}  // namespace cb::net
