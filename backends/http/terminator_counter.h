// The floors' request counting, used by http::CannedAnswer (backends/http/canned_answer.h) for
// servers/floor.cpp and servers/floor_uring.cpp: no parsing, only the request terminators.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace cb::http {

// Counts "\r\n\r\n" terminators, non-overlapping, in the stream whose previous bytes left
// `tail` (at most 3 bytes that may begin a terminator). Updates tail for the next call.
struct TerminatorCounter {
  char tail[3] = {};
  std::uint8_t tail_len = 0;

  std::size_t count(const char* buf, std::size_t n) {
    const std::size_t t = tail_len;
    const std::size_t total = t + n;
    auto at = [&](std::size_t v) { return v < t ? tail[v] : buf[v - t]; };
    std::size_t found = 0;
    std::size_t earliest = 0;  // first index a terminator may start at (they do not overlap)
    const char* p = buf;
    const char* end = buf + n;
    while (p < end) {
      const char* q = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
      if (q == nullptr) break;
      const std::size_t i = t + static_cast<std::size_t>(q - buf);  // index of this '\n'
      if (i >= earliest + 3 && at(i - 1) == '\r' && at(i - 2) == '\n' && at(i - 3) == '\r') {
        ++found;
        earliest = i + 1;
      }
      p = q + 1;
    }
    const std::size_t keep_from = std::max(earliest, total >= 3 ? total - 3 : 0);
    char next[3];
    std::size_t len = 0;
    for (std::size_t v = keep_from; v < total; ++v) next[len++] = at(v);
    std::memcpy(tail, next, len);
    tail_len = static_cast<std::uint8_t>(len);
    return found;
  }
};

}  // namespace cb::http
