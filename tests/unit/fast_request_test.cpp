// Tests of the codec's fast path (backends/http/fast_request.*).
//  1. FastRequestTable: parse_fast_request on its own, one line per case: what it accepts (and
//     the method, target, version and keep-alive it reports) and what it declines. Every proper
//     prefix of an accepted request must be declined (a partial request is never taken), and
//     every input is placed so that its last byte is the last readable byte before a PROT_NONE
//     page: a read past the end crashes the test.
//  2. FastPathDifferential: the codec with the fast path and the codec with http_parser only
//     (ParsePath::http_parser_only) must give the same response bytes (Date values masked), the
//     same response counts, close decisions, mid_request() and feed statuses, on the table's
//     inputs at every split point, on the fuzz seed corpus (tests/fuzz/corpus), and on
//     deterministic mutations of both. The fast path may only ever take a strict subset of what
//     http_parser takes with the same result; a difference here is a bug in the fast path.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "backends/http/codec.h"
#include "backends/http/fast_request.h"
#include "tests/unit/guarded_buffer.h"
#include "tests/unit/date_mask.h"

namespace {

using cb::test::mask_dates;

using namespace std::string_literals;
using cb::http::Codec;
using cb::http::FastRequest;
using cb::http::feed_status;
using cb::http::FeedResult;
using cb::http::ParsePath;
using cb::http::parse_fast_request;

using cb::test::GuardedBuffer;  // tests/unit/guarded_buffer.h

std::string escape(std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  std::string r;
  for (unsigned char c : s) {
    if (c == '\r') r += "\\r";
    else if (c == '\n') r += "\\n";
    else if (c < 0x20 || c >= 0x7f) r += "\\x", r += kHex[c >> 4], r += kHex[c & 15];
    else r += static_cast<char>(c);
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// 1. The parser on its own

enum class verdict { take, decline };
constexpr verdict take = verdict::take;
constexpr verdict decline = verdict::decline;

struct Row {
  const char* label;
  std::string input;
  verdict v;
  // When taken: the request's bytes (0: all of input), method, target, minor, keep-alive.
  std::size_t consumed = 0;
  http_method method = HTTP_GET;
  std::string target;
  unsigned short minor = 1;
  bool keep_alive = true;
};

const std::string kWrk = "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";

// Declined rows leave the fields after `v` at their defaults.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
std::vector<Row> rows() {
  const std::string long_target = "/?" + std::string(3000, 'a');
  std::vector<Row> t = {
      // label                                   input                                                       verdict consumed method target minor keep-alive
      {"wrk request", kWrk, take, 0, HTTP_GET, "/", 1, true},
      {"two pipelined: the first only", kWrk + kWrk, take, kWrk.size(), HTTP_GET, "/", 1, true},
      {"HEAD", "HEAD /json HTTP/1.1\r\nHost: t\r\n\r\n", take, 0, HTTP_HEAD, "/json", 1, true},
      {"query and odd target bytes", "GET /a/b?x=1&y=%20!$'()*+,;=:@~ HTTP/1.1\r\nHost: t\r\n\r\n", take, 0, HTTP_GET, "/a/b?x=1&y=%20!$'()*+,;=:@~", 1, true},
      {"1.0 no Host: close", "GET / HTTP/1.0\r\n\r\n", take, 0, HTTP_GET, "/", 0, false},
      {"1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", take, 0, HTTP_GET, "/", 0, true},
      {"1.0 KEEP-ALIVE and close: keep-alive wins", "GET / HTTP/1.0\r\nConnection: KEEP-ALIVE\r\nConnection: close\r\n\r\n", take, 0, HTTP_GET, "/", 0, true},
      {"1.1 Connection: Close", "GET / HTTP/1.1\r\nHost: t\r\nConnection: Close\r\n\r\n", take, 0, HTTP_GET, "/", 1, false},
      {"1.1 keep-alive and close: close wins", "GET / HTTP/1.1\r\nHost: t\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", take, 0, HTTP_GET, "/", 1, false},
      {"tabs and spaces before a value", "GET / HTTP/1.1\r\nHost:\t \tt\r\nX-A:b c \r\n\r\n", take, 0, HTTP_GET, "/", 1, true},
      {"host, any case", "GET / HTTP/1.1\r\nhOST: t\r\n\r\n", take, 0, HTTP_GET, "/", 1, true},
      {"names like the special ones", "GET / HTTP/1.1\r\nHost: t\r\nHosts: u\r\nConnectio: x\r\nContent-Lengt: 5\r\nUpgrad: y\r\nContent-Type: z\r\n\r\n", take, 0, HTTP_GET, "/", 1, true},
      {"tchar name", "GET / HTTP/1.1\r\nHost: t\r\n!#$%&'*+-.^_`|~09azAZ: v\r\n\r\n", take, 0, HTTP_GET, "/", 1, true},
      {"3000-byte target", "GET " + long_target + " HTTP/1.1\r\nHost: t\r\n\r\n", take, 0, HTTP_GET, long_target, 1, true},
      // --- declined: other methods, targets, versions
      {"POST", "POST / HTTP/1.1\r\nHost: t\r\n\r\n", decline},
      {"lower-case get", "get / HTTP/1.1\r\nHost: t\r\n\r\n", decline},
      {"GETX", "GETX / HTTP/1.1\r\nHost: t\r\n\r\n", decline},
      {"leading CRLF", "\r\n" + kWrk, decline},
      {"two spaces after method", "GET  / HTTP/1.1\r\nHost: t\r\n\r\n", decline},
      {"absolute form", "GET http://t/ HTTP/1.1\r\nHost: t\r\n\r\n", decline},
      {"asterisk", "GET * HTTP/1.1\r\nHost: t\r\n\r\n", decline},
      {"fragment", "GET /#x HTTP/1.1\r\nHost: t\r\n\r\n", decline},
      {"NUL in target", "GET /\0 HTTP/1.1\r\nHost: t\r\n\r\n"s, decline},
      {"high byte in target", "GET /\xc3\xa9 HTTP/1.1\r\nHost: t\r\n\r\n", decline},
      {"tab after target", "GET /\tHTTP/1.1\r\nHost: t\r\n\r\n", decline},
      {"HTTP/1.2", "GET / HTTP/1.2\r\nHost: t\r\n\r\n", decline},
      {"HTTP/2.0", "GET / HTTP/2.0\r\nHost: t\r\n\r\n", decline},
      {"http/1.1", "GET / http/1.1\r\nHost: t\r\n\r\n", decline},
      {"bare LF after the request line", "GET / HTTP/1.1\nHost: t\r\n\r\n", decline},
      {"space before CRLF of the line", "GET / HTTP/1.1 \r\nHost: t\r\n\r\n", decline},
      // --- declined: fields
      {"bare LF after a field", "GET / HTTP/1.1\r\nHost: t\n\r\n", decline},
      {"bare LF at the end", "GET / HTTP/1.1\r\nHost: t\r\n\n", decline},
      {"CR then X at the end", "GET / HTTP/1.1\r\nHost: t\r\n\rX", decline},
      {"space before colon", "GET / HTTP/1.1\r\nHost : t\r\n\r\n", decline},
      {"no colon", "GET / HTTP/1.1\r\nHost: t\r\nNoColon\r\n\r\n", decline},
      {"empty name", "GET / HTTP/1.1\r\nHost: t\r\n: v\r\n\r\n", decline},
      {"obs-fold", "GET / HTTP/1.1\r\nHost: t\r\nX: a\r\n b\r\n\r\n", decline},
      {"empty value", "GET / HTTP/1.1\r\nHost: t\r\nX:\r\n\r\n", decline},
      {"whitespace-only value", "GET / HTTP/1.1\r\nHost: t\r\nX: \t \r\n\r\n", decline},
      {"empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", decline},
      {"NUL in value", "GET / HTTP/1.1\r\nHost: t\0u\r\n\r\n"s, decline},
      {"DEL in value", "GET / HTTP/1.1\r\nHost: t\x7f\r\n\r\n", decline},
      {"high byte in value", "GET / HTTP/1.1\r\nHost: t\xff\r\n\r\n", decline},
      {"CR inside a value", "GET / HTTP/1.1\r\nHost: t\ru\r\n\r\n", decline},
      {"Content-Length: 0", "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", decline},
      {"content-length, any case", "GET / HTTP/1.1\r\nHost: t\r\ncontent-LENGTH: 0\r\n\r\n", decline},
      {"Transfer-Encoding", "GET / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", decline},
      {"Upgrade", "GET / HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n\r\n", decline},
      {"Proxy-Connection", "GET / HTTP/1.1\r\nHost: t\r\nProxy-Connection: close\r\n\r\n", decline},
      {"name starting with Transfer-Encoding", "GET / HTTP/1.1\r\nHost: t\r\nTransfer-Encodingnked: chunked\r\n\r\n", decline},
      {"name starting with Connection", "GET / HTTP/1.1\r\nHost: t\r\nConnections: close\r\n\r\n", decline},
      {"name starting with Content-Length", "GET / HTTP/1.1\r\nHost: t\r\nContent-Lengths: 5\r\n\r\n", decline},
      {"name starting with Upgrade", "GET / HTTP/1.1\r\nHost: t\r\nUpgrade-Insecure-Requests: 1\r\n\r\n", decline},
      {"Connection: upgrade", "GET / HTTP/1.1\r\nHost: t\r\nConnection: upgrade\r\n\r\n", decline},
      {"Connection token list", "GET / HTTP/1.1\r\nHost: t\r\nConnection: foo, close\r\n\r\n", decline},
      {"Connection: close with trailing space", "GET / HTTP/1.1\r\nHost: t\r\nConnection: close \r\n\r\n", decline},
      {"1.1 without Host", "GET / HTTP/1.1\r\n\r\n", decline},
      {"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", decline},
      {"1.0 with two Hosts", "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", decline},
      {"head over 4 KiB", "GET / HTTP/1.1\r\nHost: t\r\nX: " + std::string(4096, 'v') + "\r\n\r\n", decline},
      {"empty input", "", decline},
  };
  return t;
}

TEST(FastRequestTable, TakesTheCommonShapeAndDeclinesTheRest) {
  GuardedBuffer guard(8192);
  for (const Row& r : rows()) {
    SCOPED_TRACE(std::string(r.label) + ": \"" + escape(r.input.substr(0, 120)) + "\"");
    FastRequest req;
    std::size_t n = parse_fast_request(guard.place(r.input), req);
    if (r.v == decline) {
      EXPECT_EQ(n, 0u);
      continue;
    }
    const std::size_t want = r.consumed ? r.consumed : r.input.size();
    ASSERT_EQ(n, want);
    EXPECT_EQ(req.method, r.method);
    EXPECT_EQ(req.target, r.target);
    EXPECT_EQ(req.http_minor, r.minor);
    EXPECT_EQ(req.keep_alive, r.keep_alive);
    // A partial request is never taken: every proper prefix of the request is declined.
    for (std::size_t k = 0; k < want; ++k) {
      FastRequest partial;
      ASSERT_EQ(parse_fast_request(guard.place(std::string_view(r.input).substr(0, k)), partial), 0u)
          << "prefix of " << k << " bytes";
    }
  }
}

// ---------------------------------------------------------------------------------------------
// 2. Fast path vs. http_parser only


// Everything observable about feeding one stream.
struct Outcome {
  std::string out;     // Date values masked
  std::string trace;   // per feed(): status, consumed, responses, closing, mid_request
  bool operator==(const Outcome& o) const { return out == o.out && trace == o.trace; }
};

// Feeds `stream` in the pieces `cuts` gives (sorted offsets), each piece placed at a guard page,
// flushing at the high-water mark as a model does.
Outcome run(ParsePath path, std::string_view stream, const std::vector<std::size_t>& cuts, std::size_t high_water,
            GuardedBuffer& guard) {
  Codec codec(path);
  Outcome o;
  std::string raw;
  std::size_t from = 0;
  for (std::size_t i = 0; i <= cuts.size(); ++i) {
    std::size_t to = i < cuts.size() ? cuts[i] : stream.size();
    std::string_view piece = guard.place(stream.substr(from, to - from));
    from = to;
    for (int round = 0; round < 100000; ++round) {
      std::string out;
      FeedResult r = codec.feed(piece, out, high_water);
      raw += out;
      o.trace += std::to_string(static_cast<int>(r.status)) + "/" + std::to_string(r.consumed_bytes) + "/" +
                 std::to_string(r.responses) + "/" + std::to_string(codec.closing()) + "/" +
                 std::to_string(codec.mid_request()) + " ";
      piece.remove_prefix(r.consumed_bytes);
      if (r.status != feed_status::output_full) break;
    }
  }
  o.out = mask_dates(raw);
  o.trace += "total=" + std::to_string(codec.responses_total());
  return o;
}

::testing::AssertionResult same_outcome(std::string_view stream, const std::vector<std::size_t>& cuts,
                                        std::size_t high_water, GuardedBuffer& guard) {
  Outcome fast = run(ParsePath::fast_path, stream, cuts, high_water, guard);
  Outcome slow = run(ParsePath::http_parser_only, stream, cuts, high_water, guard);
  if (fast == slow) return ::testing::AssertionSuccess();
  std::string where;
  for (std::size_t c : cuts) where += std::to_string(c) + " ";
  return ::testing::AssertionFailure() << "input \"" << escape(stream.substr(0, 300)) << "\" cuts [" << where
                                       << "] high water " << high_water << "\n  fast:  " << fast.trace
                                       << "\n  slow:  " << slow.trace << "\n  fast out: \"" << escape(fast.out.substr(0, 400))
                                       << "\"\n  slow out: \"" << escape(slow.out.substr(0, 400)) << "\"";
}

// The seed corpus of codec_fuzz, each stream without the driver's header bytes (codec_fuzz.cpp:
// one flags byte whose low 4 bits give K, then 2K bytes of cut points).
std::vector<std::string> corpus() {
  std::vector<std::string> streams;
  const std::filesystem::path dir = std::filesystem::path(__FILE__).parent_path().parent_path() / "fuzz" / "corpus";
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::ifstream f(entry.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (bytes.empty()) continue;
    std::size_t header = 1 + 2 * (static_cast<unsigned char>(bytes[0]) & 0x0f);
    streams.push_back(header <= bytes.size() ? bytes.substr(header) : std::string());
  }
  std::sort(streams.begin(), streams.end());  // directory order is not stable
  return streams;
}

// Routes that block or burn CPU by design: not worth feeding twice per mutation.
bool slow_route(std::string_view s) {
  return s.find("/sleep") != std::string_view::npos || s.find("/spin") != std::string_view::npos;
}

std::vector<std::string> base_inputs() {
  std::vector<std::string> in = corpus();
  for (const Row& r : rows()) in.push_back(r.input);
  // Fast and slow requests interleaved, and a stream of 16 wrk requests.
  std::string mix;
  for (const Row& r : rows()) mix += r.input.size() < 200 ? r.input : "";
  in.push_back(mix);
  std::string wrk16;
  for (int i = 0; i < 16; ++i) wrk16 += kWrk;
  in.push_back(wrk16);
  in.push_back("GET /json HTTP/1.1\r\nHost: t\r\n\r\nPOST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc" + kWrk +
               "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /bytes?n=70000 HTTP/1.1\r\nHost: t\r\n\r\n" + kWrk +
               "GET /nope HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" + kWrk);
  in.erase(std::remove_if(in.begin(), in.end(), [](const std::string& s) { return slow_route(s); }), in.end());
  return in;
}

TEST(FastPathDifferential, EverySplitPointOfEveryBaseInput) {
  GuardedBuffer guard(1 << 17);
  for (const std::string& s : base_inputs()) {
    ASSERT_TRUE(same_outcome(s, {}, cb::http::kOutputHighWaterBytes, guard));
    ASSERT_TRUE(same_outcome(s, {}, 1, guard));  // a pause after every response
    const std::size_t step = s.size() > 2000 ? 7 : 1;
    for (std::size_t k = 0; k <= s.size(); k += step) ASSERT_TRUE(same_outcome(s, {k}, cb::http::kOutputHighWaterBytes, guard));
  }
}

TEST(FastPathDifferential, ByteAtATime) {
  GuardedBuffer guard(1 << 17);
  for (const std::string& s : base_inputs()) {
    if (s.size() > 4000) continue;
    std::vector<std::size_t> cuts;
    for (std::size_t k = 1; k < s.size(); ++k) cuts.push_back(k);
    ASSERT_TRUE(same_outcome(s, cuts, cb::http::kOutputHighWaterBytes, guard));
  }
}

// Deterministic mutations (fixed seed): overwrite, insert or delete bytes the parsers care about,
// change case, duplicate or cut a slice; one to three edits each, fed whole, split once at a
// random point, and with a one-byte high-water mark.
TEST(FastPathDifferential, Mutations) {
  static const char kInteresting[] = {' ', '\t', '\r', '\n', ':', '\0', '\x7f', '\x80', '\xff', '#', '?', '/',
                                      '%', ',', 'H', 'h', 'T', '1', '0', '2', 'c', 'C', '-', 'k', ';', 'G'};
  std::mt19937_64 rng(13);
  auto pick = [&rng](std::size_t n) { return n == 0 ? 0 : static_cast<std::size_t>(rng() % n); };
  GuardedBuffer guard(1 << 17);
  const std::vector<std::string> bases = base_inputs();
  std::size_t runs = 0;
  for (const std::string& base : bases) {
    if (base.empty()) continue;
    for (int m = 0; m < 300; ++m) {
      std::string s = base;
      const int edits = 1 + static_cast<int>(pick(3));
      for (int e = 0; e < edits && !s.empty(); ++e) {
        const std::size_t at = pick(s.size());
        const char ch = (rng() & 3) == 0 ? static_cast<char>(rng()) : kInteresting[pick(sizeof kInteresting)];
        switch (pick(6)) {
          case 0: s[at] = ch; break;
          case 1: s.insert(s.begin() + static_cast<std::ptrdiff_t>(at), ch); break;
          case 2: s.erase(at, 1 + pick(3)); break;
          case 3: s[at] = static_cast<char>(s[at] ^ 0x20); break;
          case 4: s.insert(at, s.substr(pick(s.size()), 1 + pick(40))); break;
          case 5: s.resize(at); break;
        }
      }
      if (slow_route(s)) continue;
      ASSERT_TRUE(same_outcome(s, {}, cb::http::kOutputHighWaterBytes, guard));
      ASSERT_TRUE(same_outcome(s, {pick(s.size() + 1)}, cb::http::kOutputHighWaterBytes, guard));
      ASSERT_TRUE(same_outcome(s, {}, 1, guard));
      ++runs;
    }
  }
  RecordProperty("mutations", static_cast<int>(runs));
  EXPECT_GT(runs, 10000u);
}

}  // namespace
