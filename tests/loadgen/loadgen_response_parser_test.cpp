// Response framing (backends/loadgen/response_parser.h): one line per case, and every case fed at
// every split point, so partial reads are handled wherever they fall.
#include "backends/loadgen/response_parser.h"

#include <gtest/gtest.h>

#include <string>

using cb::loadgen::parse_status;
using cb::loadgen::ResponseParser;

namespace {

struct Case {
  const char* label;
  std::string input;
  parse_status want;
  std::size_t consumed;  // for complete
  int status;
};

const std::string kHello = "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, world!";
const std::string kChunked =
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nHello\r\n8;ext=1\r\n, world!\r\n0\r\nX-T: 1\r\n\r\n";

// The published table's bytes (cbench-server --response published): bare LF line endings, which
// RFC 9112 section 2.2 lets a recipient accept and wrk does.
const std::string kPublished = "HTTP/1.1 200 OK\nContent-Length: 13\n\nHello, world!";
const std::string kChunkedLf = "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n5\nHello\n0\n\n";

const Case kCases[] = {
    {"bare_lf_published_bytes", kPublished, parse_status::complete, kPublished.size(), 200},
    {"bare_lf_then_next", "HTTP/1.1 200 OK\nContent-Length: 13\n\nHello, world!HTTP/1.1 200 OK\n", parse_status::complete,
     kPublished.size(), 200},
    {"mixed_crlf_and_lf", "HTTP/1.1 201 Created\r\nContent-Length: 2\n\r\nok", parse_status::complete, 44, 201},
    {"chunked_bare_lf", kChunkedLf, parse_status::complete, kChunkedLf.size(), 200},
    {"bare_lf_no_framing", "HTTP/1.1 200 OK\nServer: x\n\nbody", parse_status::invalid, 0, 0},
    {"bare_lf_header_without_colon", "HTTP/1.1 200 OK\nnocolon\n\n", parse_status::invalid, 0, 0},
    {"content_length", kHello, parse_status::complete, kHello.size(), 200},
    {"content_length_then_next", kHello + "HTTP/1.1", parse_status::complete, kHello.size(), 200},
    {"chunked_with_trailer", kChunked, parse_status::complete, kChunked.size(), 200},
    {"http10", "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n", parse_status::complete, 45, 404},
    {"no_reason", "HTTP/1.1 503\r\ncontent-length: 1\r\n\r\nx", parse_status::complete, 36, 503},
    {"204_no_body", "HTTP/1.1 204 No Content\r\n\r\n", parse_status::complete, 27, 204},
    {"partial_body", "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello", parse_status::partial, 0, 0},
    {"garbage", "garbage garbage\r\n\r\n", parse_status::invalid, 0, 0},
    {"garbage_short", "xyz", parse_status::invalid, 0, 0},
    {"http2_preface", "HTTP/2 200\r\n\r\n", parse_status::invalid, 0, 0},
    {"bad_status_digits", "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n", parse_status::invalid, 0, 0},
    {"no_framing", "HTTP/1.1 200 OK\r\nServer: x\r\n\r\nbody", parse_status::invalid, 0, 0},
    {"bad_length", "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", parse_status::invalid, 0, 0},
    {"conflicting_lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", parse_status::invalid, 0, 0},
    {"bad_chunk_size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", parse_status::invalid, 0, 0},
    {"chunk_missing_crlf", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\naXX0\r\n\r\n", parse_status::invalid, 0, 0},
    {"header_without_colon", "HTTP/1.1 200 OK\r\nnocolon\r\nContent-Length: 0\r\n\r\n", parse_status::invalid, 0, 0},
};

TEST(ResponseParser, Table) {
  for (const auto& c : kCases) {
    ResponseParser p;
    parse_status got = p.parse(c.input);
    EXPECT_EQ(static_cast<int>(got), static_cast<int>(c.want)) << c.label;
    if (c.want == parse_status::complete) {
      EXPECT_EQ(p.consumed(), c.consumed) << c.label;
      EXPECT_EQ(p.status_code(), c.status) << c.label;
    }
  }
}

// Fed in growing prefixes (as bytes arrive), a complete case is partial until its last byte and
// complete from then on; an invalid case never becomes complete.
TEST(ResponseParser, EveryPrefix) {
  for (const auto& c : kCases) {
    if (c.want == parse_status::partial) continue;
    ResponseParser p;
    bool saw_complete = false;
    for (std::size_t n = 1; n <= c.input.size(); ++n) {
      std::string prefix = c.input.substr(0, n);
      parse_status got = p.parse(prefix);
      if (got == parse_status::invalid) {
        EXPECT_EQ(static_cast<int>(c.want), static_cast<int>(parse_status::invalid)) << c.label << " at " << n;
        break;
      }
      if (got == parse_status::complete) {
        EXPECT_EQ(static_cast<int>(c.want), static_cast<int>(parse_status::complete)) << c.label;
        EXPECT_EQ(p.consumed(), c.consumed) << c.label << " at " << n;
        EXPECT_GE(n, c.consumed) << c.label;
        saw_complete = true;
        break;
      }
    }
    if (c.want == parse_status::complete) EXPECT_TRUE(saw_complete) << c.label;
  }
}

}  // namespace
