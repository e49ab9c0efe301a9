// Accepting connections, the same way in every model: one status enum instead of -1 and errno,
// one answer to running out of descriptors, and the constants every acceptor shares.
#pragma once
#include <chrono>
#include <cstdint>

namespace cb::net {

// Connections accepted per readiness event of a listener, so that a connect storm cannot starve
// established connections (each batch costs at most 64 accept4 calls before the loop moves on).
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
  out_of_descriptors,  // EMFILE, ENFILE, ENOBUFS, ENOMEM: back off (accept_back_off) or unwatch
  stopped,             // the listener was shut down or closed (EINVAL, EBADF): stop accepting
};

struct Accepted {
  accept_status status = accept_status::again;
  int fd = -1;  // >= 0 only with accept_status::ok
};

// accept4 on listen_fd, retrying EINTR, classified. Never blocks longer than accept4 does.
Accepted accept_connection(int listen_fd, bool nonblocking);

// The blocking acceptors' answer to a failed accept: sleeps kAcceptRetryDelay when out of
// descriptors, returns at once otherwise. (Loop-based acceptors unwatch the listener until their
// next sweep instead; a blocked thread has nothing else to do.)
void accept_back_off(accept_status status);

// Accepts up to kMaxAcceptsPerEvent connections from a non-blocking listener, passing each new
// descriptor to on_accepted(fd). Returns the status that ended the batch: again (drained, or the
// bound was reached: level-triggered readiness returns), out_of_descriptors (the caller stops
// watching the listener until its next sweep, so it does not spin on a readable listener), or
// stopped.
template <class OnAccepted>
accept_status accept_batch(int listen_fd, OnAccepted&& on_accepted) {
  for (int i = 0; i < kMaxAcceptsPerEvent; ++i) {
    Accepted a = accept_connection(listen_fd, /*nonblocking=*/true);
    if (a.status != accept_status::ok) return a.status;
    on_accepted(a.fd);
  }
  return accept_status::again;
}

}  // namespace cb::net
