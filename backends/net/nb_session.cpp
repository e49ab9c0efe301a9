#include "backends/net/nb_session.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "backends/stats/counters.h"

namespace cb::net {

want NbSession::on_readable(IoScratch& scratch, BlockingRegion* around) {
  if (pump_.state() == http::pump_state::write) return want::write;  // spurious: waiting for writability
  for (int i = 0; i < http::kMaxReadsPerEvent; ++i) {
    if (around != nullptr) around->begin_blocking(SysCall::read);
    ssize_t n = ::read(fd_, scratch.read_buf, sizeof scratch.read_buf);
    const int read_errno = errno;
    if (around != nullptr) around->end_blocking(SysCall::read);
    errno = read_errno;
    if (n > 0) {
      pump_.feed({scratch.read_buf, static_cast<std::size_t>(n)}, scratch.out);
      want w = flush(scratch, around);
      if (w != want::read) return w;
      // A short read means the socket is drained: skip the read that would return EAGAIN.
      if (static_cast<std::size_t>(n) < sizeof scratch.read_buf) return want::read;
      continue;
    }
    if (n == 0) return want::close;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      stats::count(stats::Counter::empty_reads);  // readiness that found nothing: a wasted wake-up
      return want::read;
    }
    return want::close;
  }
  return want::read;  // bound reached: let other connections run; level-triggered readiness returns
}

want NbSession::on_writable(IoScratch& scratch, BlockingRegion* around) { return flush(scratch, around); }

want NbSession::flush(IoScratch& scratch, BlockingRegion* around) {
  for (;;) {
    std::string_view out = pump_.output();
    if (out.empty()) break;
    if (around != nullptr) around->begin_blocking(SysCall::write);
    ssize_t n = ::send(fd_, out.data(), out.size(), MSG_NOSIGNAL);
    const int send_errno = errno;
    if (around != nullptr) around->end_blocking(SysCall::write);
    errno = send_errno;
    if (n > 0) {
      pump_.consumed(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return want::write;  // keeps its buffer
    return want::close;
  }
  pump_.lend_back(scratch.out);
  return pump_.state() == http::pump_state::close ? want::close : want::read;
}

}  // namespace cb::net
