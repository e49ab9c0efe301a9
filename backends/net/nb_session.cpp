#include "backends/net/nb_session.h"

#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "backends/net/socket.h"
#include "backends/server/counters.h"

namespace cb::net {

want NbSession::on_readable(IoScratch& scratch) {
  if (!out_pending_.empty()) return want::write;  // spurious: we are waiting for writability
  for (int i = 0; i < http::kMaxReadsPerEvent; ++i) {
    ssize_t n = ::read(fd_, scratch.read_buf, sizeof scratch.read_buf);
    if (n > 0) {
      want w = process({scratch.read_buf, static_cast<std::size_t>(n)}, scratch);
      if (w != want::read) return w;
      // A short read means the socket is drained: skip the read that would return EAGAIN.
      if (static_cast<std::size_t>(n) < sizeof scratch.read_buf) return want::read;
      continue;
    }
    if (n == 0) return want::close;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      server::count(server::Counter::empty_reads);  // issue 14 mechanism counter
      return want::read;
    }
    return want::close;
  }
  return want::read;  // bound reached: let other connections run; level-triggered readiness returns
}

namespace {

// Sends buf[from..] until done or the socket is full. Returns the new offset, or -1 if the peer
// is gone.
long send_some(int fd, const std::string& buf, std::size_t from) {
  while (from < buf.size()) {
    ssize_t n = ::send(fd, buf.data() + from, buf.size() - from, MSG_NOSIGNAL);
    if (n > 0) {
      from += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    return -1;
  }
  return static_cast<long>(from);
}

}  // namespace

want NbSession::on_writable(IoScratch& scratch) {
  if (out_offset_ < out_pending_.size()) {
    long sent = send_some(fd_, out_pending_, out_offset_);
    if (sent < 0) return want::close;
    out_offset_ = static_cast<std::size_t>(sent);
    if (out_offset_ < out_pending_.size()) return want::write;
  }
  out_offset_ = 0;
  // Keep a modest buffer for the next time the socket fills; drop a huge one so that a
  // connection that once received a large body does not hold it while idle.
  if (out_pending_.capacity() > http::kOutputHighWaterBytes) std::string().swap(out_pending_);
  else out_pending_.clear();
  return after_flush(scratch);
}

want NbSession::process(std::string_view input, IoScratch& scratch) {
  scratch.out.clear();
  http::FeedResult r = codec_.feed(input, scratch.out);
  if (r.responses > 0) progress_ = true;
  if (r.status == http::feed_status::output_full) {
    // At most one read's worth; reserved whole on the first stop so that later stops reuse it
    // (after_flush empties it without freeing) instead of allocating each time.
    if (in_backlog_.capacity() < http::kReadBufferBytes) in_backlog_.reserve(http::kReadBufferBytes);
    in_backlog_.append(input.substr(r.consumed_bytes));
  }
  want w = send_output(scratch);
  return w == want::read ? after_flush(scratch) : w;
}

want NbSession::send_output(IoScratch& scratch) {
  long sent = send_some(fd_, scratch.out, 0);
  if (sent < 0) return want::close;
  if (static_cast<std::size_t>(sent) < scratch.out.size()) {
    out_pending_.append(scratch.out, static_cast<std::size_t>(sent), std::string::npos);
    return want::write;
  }
  return want::read;
}

want NbSession::after_flush(IoScratch& scratch) {
  // Parses the held-back input in place, one high-water mark of output at a time, until it is
  // used up or the socket fills. Bounded by the backlog: each round consumes at least one request.
  for (;;) {
    if (codec_.closing()) return want::close;
    if (in_backlog_.empty()) return want::read;
    scratch.out.clear();
    http::FeedResult r = codec_.feed(in_backlog_, scratch.out);
    if (r.responses > 0) progress_ = true;
    in_backlog_.erase(0, r.consumed_bytes);  // keeps the capacity for the next stop
    want w = send_output(scratch);
    if (w != want::read) return w;
  }
}

std::uint64_t serve_blocking(int fd, int idle_timeout_ms, IoScratch& scratch) {
  using clock = std::chrono::steady_clock;
  timeval tv{idle_timeout_ms / 1000, (idle_timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  // A client that stops reading would otherwise hold this thread in send() forever.
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  const auto timeout = std::chrono::milliseconds(idle_timeout_ms);
  http::Codec codec;
  auto last_progress = clock::now();
  std::string backlog;
  for (;;) {
    ssize_t n = ::read(fd, scratch.read_buf, sizeof scratch.read_buf);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      break;  // EAGAIN here is SO_RCVTIMEO expiring: idle timeout
    }
    std::string_view input(scratch.read_buf, static_cast<std::size_t>(n));
    for (;;) {
      scratch.out.clear();
      http::FeedResult r = codec.feed(input, scratch.out);
      if (r.responses > 0) last_progress = clock::now();
      if (!write_all(fd, scratch.out.data(), scratch.out.size())) return codec.responses_total();
      if (r.status != http::feed_status::output_full) break;
      backlog.assign(input.substr(r.consumed_bytes));  // copy: input may point into backlog
      input = backlog;
    }
    if (codec.closing()) break;
    if (clock::now() - last_progress > timeout) break;  // a client that only trickles bytes
  }
  return codec.responses_total();
}

}  // namespace cb::net
