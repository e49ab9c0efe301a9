// Model: thread-per-connection.
//
// A blocking accept loop on the main thread; every accepted connection gets its own thread that
// reads, parses, answers and writes with blocking calls until the peer closes. The design the
// source posts argue against: simple, forward-written code, paid for with a thread (stack and
// scheduler entry) per connection and a context switch whenever the CPU moves between clients.
//
// --threads: ignored (the thread count follows the connection count).
// /sleep: blocks only its own connection's thread; others are unaffected.
// /spin: the kernel time-slices the busy threads of all connections on the server's CPUs.
// EMFILE: net::accept_blocking sleeps net::kAcceptRetryDelay and accepts again (no spin, no exit);
// it counts accepts, and net::close_connection counts closes.
// Stop: the listener and every open connection are shut down; threads finish within a bounded
// wait (kStopWait) and the process exits.
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>
#include <unordered_set>

#include "backends/net/accept.h"
#include "backends/net/blocking_session.h"
#include "backends/net/socket.h"
#include "backends/server/model.h"

namespace {

using namespace cb;

// How long a stop waits for connection threads to finish their current response.
constexpr auto kStopWait = std::chrono::seconds(2);

// The open connections, so that a stop can shut them down and wait for their threads.
class Connections {
 public:
  bool add(int fd) {
    std::lock_guard lock(mu_);
    if (closed_) return false;
    fds_.insert(fd);
    return true;
  }
  void remove(int fd) {
    std::lock_guard lock(mu_);
    fds_.erase(fd);
    if (fds_.empty()) cv_.notify_all();
  }
  // Refuses further connections and shuts down the open ones (their reads return 0).
  void shutdown_all() {
    std::lock_guard lock(mu_);
    closed_ = true;
    for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
  }
  bool wait_empty(std::chrono::seconds limit) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, limit, [&] { return fds_.empty(); });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_set<int> fds_;
  bool closed_ = false;
};

int run(const server::Options& opt, server::Control& control) {
  const int listen_fd = control.listeners().front();
  // Shared with detached connection threads, which may outlive this function on a slow stop.
  auto conns = std::make_shared<Connections>();
  control.on_stop([listen_fd, conns] {
    ::shutdown(listen_fd, SHUT_RDWR);  // wakes the blocking accept
    conns->shutdown_all();
  });
  const int idle_timeout_ms = opt.idle_timeout_ms;

  while (!control.stopping()) {
    const int fd = net::accept_blocking(listen_fd);  // counted; backs off when out of descriptors
    if (fd < 0) break;  // the stop's shutdown of the listener
    if (!conns->add(fd)) {
      net::close_connection(fd);
      break;
    }
    try {
      std::thread([fd, conns, idle_timeout_ms] {
        // With one thread per connection, per-thread buffers are per-connection. `new PumpScratch`
        // (not make_unique, which zero-fills) leaves the 16 KiB read buffer untouched until a read
        // writes into it, so an idle connection's RSS is its stack, not an unused buffer.
        std::unique_ptr<http::PumpScratch> scratch(new http::PumpScratch);
        net::serve_blocking(fd, idle_timeout_ms, *scratch);
        conns->remove(fd);
        net::close_connection(fd);
      }).detach();
    } catch (const std::system_error&) {
      // Out of threads (EAGAIN): refuse this connection rather than die.
      conns->remove(fd);
      net::close_connection(fd);
      std::this_thread::sleep_for(net::kAcceptRetryDelay);
    }
  }
  conns->shutdown_all();
  conns->wait_empty(kStopWait);
  return 0;
}

}  // namespace

CBENCH_REGISTER_MODEL(thread_per_connection, "thread-per-connection",
                      "one blocking thread per connection (accept loop spawns a thread per client)",
                      server::ListenerLayout::one, &run)
