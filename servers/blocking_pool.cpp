// Model: blocking-pool (Apache prefork/worker, Unicorn, Puma's thread pool).
//
// A fixed pool of --threads threads. Each one loops: a blocking accept on the one shared
// listener, then serves that connection with blocking reads and writes (net::serve_blocking)
// until the peer closes, a closing response, an error or the idle timeout; then accepts again.
// The kernel wakes one blocked accept per new connection, so there is no thundering herd.
//
// Nothing queues connections in user space: with more connections than threads, the extra ones
// are completed by the kernel (the client's connect succeeds, its request is buffered) and then
// wait in the listen backlog, unanswered, until a thread is free, that is until a served
// connection closes or idles out. Keep-alive clients (wrk) never close, so with wrk -c C and
// --threads N < C, C - N connections get no answer during the run (wrk counts them as timeouts
// only once they have waited its --timeout, 2 s by default), and the throughput is that of N
// connections. That is the behaviour of the model, shown as it is: Unicorn answers it with a
// buffering proxy in front, Puma with a reactor for slow clients; this model has neither.
//
// --threads N: N worker threads, N connections served at once.
// /sleep: blocks its worker, so that connection and one pool slot; the other N - 1 workers go on.
//   N concurrent sleepers stop the server from accepting anyone.
// /spin: busies its worker's CPU; the kernel time-slices the N workers on the server's cores.
// Idle timeout: SO_RCVTIMEO inside serve_blocking (a silent client is dropped within one timeout,
//   one that trickles a request within two) and SO_SNDTIMEO there too, so a client
//   that stops reading holds a worker for at most about two timeouts, not forever (a blocked send
//   returns what it sent when the timeout expires, and the next one fails).
// EMFILE: the worker sleeps net::kAcceptRetryDelay (net::accept_blocking) and accepts again; no spin,
//   no exit. accept_blocking counts accepts, net::close_connection closes.
// Stop: the listener is shut down (every blocked accept returns EINVAL) and so is every connection
//   being served (their reads return 0, their writes EPIPE); the workers finish the request in
//   hand, at worst a /sleep of kMaxSleepMs, and run() joins them. Connections still waiting in the
//   backlog are reset when main closes the listener.
#include <sys/socket.h>
#include <sys/time.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "backends/net/accept.h"
#include "backends/net/blocking_session.h"
#include "backends/net/socket.h"
#include "backends/stats/counters.h"
#include "backends/server/model.h"
#include "backends/server/threads.h"

namespace {

using namespace cb;

// The connection each worker is serving, so that a stop can shut them down. A worker registers
// its connection before serving and clears it before closing it, both under the lock, so a stop
// never shuts down a descriptor number that was closed and reused.
class Serving {
 public:
  explicit Serving(std::size_t workers) : fds_(workers, -1) {}

  // Records fd as worker's connection. Returns false if the server is stopping (the worker then
  // closes fd and exits).
  bool begin(std::size_t worker, int fd) {
    std::lock_guard lock(mu_);
    if (stopping()) return false;
    fds_[worker] = fd;
    return true;
  }

  bool stopping() const { return stopping_.load(std::memory_order_acquire); }

  void end(std::size_t worker) {
    std::lock_guard lock(mu_);
    fds_[worker] = -1;
  }

  // Refuses further connections and shuts down the ones being served. Non-blocking.
  void shutdown_all() {
    std::lock_guard lock(mu_);
    stopping_.store(true, std::memory_order_release);
    for (int fd : fds_)
      if (fd >= 0) ::shutdown(fd, SHUT_RDWR);
  }

 private:
  std::mutex mu_;
  std::vector<int> fds_;  // one per worker, -1 when idle
  std::atomic<bool> stopping_{false};
};

// One pool thread: accept, serve until the connection ends, repeat until the stop.
void work(std::size_t worker, int listen_fd, int idle_timeout_ms, Serving& serving) {
  // Per-thread buffers: one connection at a time, so this is also per connection.
  auto scratch = std::make_unique<http::PumpScratch>();
  while (!serving.stopping()) {
    const int fd = net::accept_blocking(listen_fd);  // counted; backs off when out of descriptors
    if (fd < 0) break;  // the stop's shutdown of the listener
    if (!serving.begin(worker, fd)) {
      net::close_connection(fd);
      break;
    }
    net::serve_blocking(fd, idle_timeout_ms, *scratch);
    serving.end(worker);
    net::close_connection(fd);
  }
}

int run(const server::Options& opt, server::Control& control) {
  const int listen_fd = control.listeners().front();
  const auto workers = static_cast<std::size_t>(opt.threads);
  // Shared with the stop function, which may still be returning when the workers have seen the
  // stop, ended and been joined.
  auto serving = std::make_shared<Serving>(workers);
  control.on_stop([listen_fd, serving] {
    ::shutdown(listen_fd, SHUT_RDWR);  // wakes every blocked accept
    serving->shutdown_all();
  });

  // Out of threads at start-up: run with none rather than fewer than asked, and say so.
  return server::run_on_threads(
      "blocking-pool", opt.threads,
      [&](int i) { work(static_cast<std::size_t>(i), listen_fd, opt.idle_timeout_ms, *serving); },
      [&] {
        ::shutdown(listen_fd, SHUT_RDWR);
        serving->shutdown_all();
      });
}

}  // namespace

CBENCH_REGISTER_MODEL(blocking_pool, "blocking-pool",
                      "N threads, each accepting and serving one connection at a time with blocking I/O (Unicorn, Puma, Apache)",
                      server::ListenerLayout::one, &run, {.bounded = true})
