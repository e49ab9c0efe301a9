// Accepting connections, the same way in every model: one status enum instead of -1 and errno,
// one answer to running out of descriptors, one batch size, and one place that counts the
// connections accepted and closed (the `accepts` and `closes` counters, stats/counters.h).
//
// Who uses what:
//   net::Acceptor      every model that polls its listener for readiness (epoll, libev, the pull
//                      loop): the batch, the EMFILE pause and its resume at the next sweep, the count.
//   accept_blocking    models whose threads block in accept (blocking-pool, thread-per-connection).
//   count_accepted     models whose accept is done elsewhere: by a library (Asio, libuv) or by the
//                      kernel (io_uring's accept SQE). They keep their own EMFILE answer, said in
//                      their file's contract, and count here.
//   count_closed / close_connection   every model, once per connection it closes, whoever closed first.
#pragma once
#include <chrono>
#include <cstdint>

#include "backends/stats/counters.h"

namespace cb::net {

// Connections accepted per readiness event of a listener, so that a connect storm cannot starve
// established connections (each batch costs at most 64 accept4 calls before the loop moves on),
// while a burst of connects (wrk opens all its connections at once) needs few loop rounds.
inline constexpr int kMaxAcceptsPerEvent = 64;

// Back-off after accept fails for lack of descriptors (or buffers or memory), so an acceptor
// neither spins nor dies. Long enough for some connections to close, short next to a benchmark's
// seconds.
inline constexpr auto kAcceptRetryDelay = std::chrono::milliseconds(20);

// Idle sweeps, and retries of a listener paused for lack of descriptors, run this often in the
// loop-based models. Coarse on purpose: a wake-up 4 times a second costs nothing measurable, and
// idle timeouts are seconds long.
inline constexpr auto kSweepPeriod = std::chrono::milliseconds(250);

enum class accept_status : std::uint8_t {
  ok,                  // fd is a new connection (SOCK_CLOEXEC, and SOCK_NONBLOCK if asked)
  again,               // nothing to accept now (EAGAIN), or that client left (ECONNABORTED, EPROTO...)
  out_of_descriptors,  // EMFILE, ENFILE, ENOBUFS, ENOMEM: back off (accept_blocking) or unwatch (Acceptor)
  stopped,             // the listener was shut down or closed (EINVAL, EBADF): stop accepting
};

struct Accepted {
  accept_status status = accept_status::again;
  int fd = -1;  // >= 0 only with accept_status::ok
};

// Counts n connections accepted. For models whose accept is not done by Acceptor or
// accept_blocking (those two count by themselves). Lock-free, any thread.
inline void count_accepted(std::uint64_t n = 1) { stats::count(stats::Counter::accepts, n); }

// Counts one connection closed by the server (for any reason: the peer's EOF, an error, the idle
// timeout, Connection: close, a stop). Call once per accepted connection, when its fd is closed
// or handed to a library to close. Lock-free, any thread.
inline void count_closed() { stats::count(stats::Counter::closes); }

// Closes a connection's fd (ignoring EINTR) and counts it (count_closed).
void close_connection(int fd);

// accept4 on listen_fd, retrying EINTR, classified. Never blocks longer than accept4 does.
// Counts nothing: the callers below do.
Accepted accept_connection(int listen_fd, bool nonblocking);

// For threads that block in accept: waits for the next connection on a blocking listener and
// returns it (blocking, TCP_NODELAY, counted as accepted), or -1 once the listener is stopped
// (shutdown(2) of the listener is how blocking models wake their acceptors). Out of descriptors,
// it sleeps kAcceptRetryDelay and tries again: a blocked thread has nothing else to do.
int accept_blocking(int listen_fd);

// The accepting half of a model that polls its listener. It owns the listener's accept calls, the
// batch bound, the pause when the process is out of descriptors and the counts; the model owns
// its poller, so it passes how to stop and restart watching the listener as callables.
// Not thread-safe: one poller thread calls it.
class Acceptor {
 public:
  // listen_fd: a listener the caller has made non-blocking and watches for readability
  // (level-triggered); not owned.
  explicit Acceptor(int listen_fd) : listen_fd_(listen_fd) {}

  int fd() const { return listen_fd_; }

  // True while the listener is unwatched for lack of descriptors (until on_sweep re-watches it).
  bool paused() const { return paused_; }

  // The listener is readable. Accepts up to kMaxAcceptsPerEvent connections, each non-blocking
  // with TCP_NODELAY and counted, and passes it to on_accepted(int fd), which owns it from then on.
  // Out of descriptors, it calls unwatch() (the listener stays readable: watching it would spin)
  // and is paused until on_sweep. Returns the status that ended the batch (again also when the
  // bound was reached: level-triggered readiness brings the loop back for the rest).
  template <class OnAccepted, class Unwatch>
  accept_status on_readable(OnAccepted&& on_accepted, Unwatch&& unwatch) {
    for (int i = 0; i < kMaxAcceptsPerEvent; ++i) {
      Accepted a = accept_connection(listen_fd_, /*nonblocking=*/true);
      if (a.status == accept_status::out_of_descriptors) {
        unwatch();
        paused_ = true;
      }
      if (a.status != accept_status::ok) return a.status;
      adopt(a.fd);
      on_accepted(a.fd);
    }
    return accept_status::again;
  }

  // Call from the model's periodic sweep (every kSweepPeriod). If paused, calls watch(), which
  // returns true once the listener is watched again; paused() stays true until it does.
  template <class Watch>
  void on_sweep(Watch&& watch) {
    if (paused_ && watch()) paused_ = false;
  }

 private:
  static void adopt(int fd);  // TCP_NODELAY and the count

  int listen_fd_;
  bool paused_ = false;
};

}  // namespace cb::net
