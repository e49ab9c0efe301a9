#include "backends/net/blocking_session.h"

#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

namespace cb::net {
namespace {

// Sends all of the pump's output (and what it parses from its backlog as the output drains).
// Returns false if the peer is gone or a blocked send timed out.
bool write_output(int fd, http::Pump& pump) {
  for (std::string_view out = pump.output(); !out.empty(); out = pump.output()) {
    ssize_t n = ::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
    if (n > 0) {
      pump.consumed(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return false;
  }
  return true;
}

}  // namespace

std::uint64_t serve_blocking(int fd, int idle_timeout_ms, http::PumpScratch& scratch) {
  using clock = std::chrono::steady_clock;
  timeval tv{idle_timeout_ms / 1000, (idle_timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  // A client that stops reading would otherwise hold this thread in send() forever.
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  const auto timeout = std::chrono::milliseconds(idle_timeout_ms);
  http::Pump pump;
  auto last_progress = clock::now();
  for (;;) {
    ssize_t n = ::read(fd, scratch.read_buf, sizeof scratch.read_buf);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      break;  // EAGAIN here is SO_RCVTIMEO expiring: idle timeout
    }
    pump.feed({scratch.read_buf, static_cast<std::size_t>(n)}, scratch.out);
    if (pump.take_progress()) last_progress = clock::now();
    bool sent = write_output(fd, pump);
    if (pump.take_progress()) last_progress = clock::now();  // requests parsed from the backlog
    pump.lend_back(scratch.out);
    if (!sent || pump.state() == http::pump_state::close) break;
    if (clock::now() - last_progress > timeout) break;  // a client that only trickles bytes
  }
  return pump.responses_total();
}

}  // namespace cb::net
