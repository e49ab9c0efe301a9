// Incremental HTTP/1.1 response framing for cbench-load: finds where each response ends, checks
// the status line, and tells framing errors apart from "need more bytes".
#pragma once
#include <cstddef>
#include <string_view>

namespace cb::loadgen {

enum class parse_status { complete, partial, invalid };

// Parses responses one at a time from a byte stream. Feed it the unconsumed bytes of the
// connection (the caller keeps them); it never copies them.
class ResponseParser {
 public:
  // Limit on status line plus headers: a server that sends more is sending garbage.
  static constexpr std::size_t kMaxHeaderBytes = 64 * 1024;

  // Examines buf (the unconsumed bytes, starting at a response's first byte or where the last
  // partial call stopped). complete: one response ends at buf[consumed()-1]; the caller drops
  // those bytes and calls reset(). partial: call again with the same bytes plus more. invalid:
  // not HTTP/1.x, a bad status line, no framing (neither Content-Length nor chunked, on a status
  // that has a body), a bad chunk size, or headers over kMaxHeaderBytes.
  parse_status parse(std::string_view buf);
  std::size_t consumed() const { return consumed_; }
  int status_code() const { return status_; }
  void reset() { *this = ResponseParser{}; }

 private:
  enum class phase { head, body_length, chunk_size, chunk_data, chunk_data_crlf, trailers };
  parse_status parse_head(std::string_view buf);

  phase phase_ = phase::head;
  std::size_t pos_ = 0;        // bytes of buf examined so far (all of them framed)
  std::size_t remaining_ = 0;  // body or chunk bytes still to come
  std::size_t consumed_ = 0;
  int status_ = 0;
};

}  // namespace cb::loadgen
