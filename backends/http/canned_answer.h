// The floor instruments' answering (servers/floor.cpp over epoll, servers/floor_uring.cpp over
// io_uring): count the request terminators in what a connection sent and answer each with the
// same canned GET / bytes. Here once, so that the two floors differ only in their I/O interface.
#pragma once
#include <time.h>

#include <cstddef>
#include <string>

#include "backends/http/codec.h"
#include "backends/http/handler.h"
#include "backends/http/terminator_counter.h"

namespace cb::http {

// One thread's canned answer: the shared codec's response to GET / (http::handle serialised by
// http::Codec::serialize), so byte for byte a model's answer. Its Date is re-made by refresh()
// when the second has changed; the loops call it on every tick. Not thread-safe: one per thread.
class CannedAnswer {
 public:
  CannedAnswer() {
    bytes_.reserve(512);  // capacity kept across refreshes: no allocation per second
    refresh();
  }

  void refresh() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    if (ts.tv_sec == second_) return;
    second_ = ts.tv_sec;
    Request req;
    req.method = HTTP_GET;
    req.target = req.path = "/";
    const Response resp = handle(req);
    bytes_.clear();
    Codec::serialize(resp, /*keep_alive=*/true, /*http10_keep_alive=*/false, /*head_only=*/false, bytes_);
  }

  // Counts the request terminators in the next n bytes of a connection's stream (its state in
  // `terminators`, so a terminator split across reads counts once) and appends one canned answer
  // per terminator to `out`. Returns how many. Parses nothing: any request gets the same answer.
  std::size_t answer(TerminatorCounter& terminators, const char* in, std::size_t n, std::string& out) const {
    const std::size_t count = terminators.count(in, n);
    for (std::size_t i = 0; i < count; ++i) out.append(bytes_);
    return count;
  }

 private:
  std::string bytes_;
  time_t second_ = -1;
};

}  // namespace cb::http
