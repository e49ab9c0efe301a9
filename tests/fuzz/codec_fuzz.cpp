// libFuzzer target for the shared HTTP codec (backends/http/codec.h): arbitrary bytes, fed in
// arbitrary pieces, pipelined, under ASan and UBSan. Built only with -DCBENCH_FUZZ=ON and clang
// (tests/fuzz/CMakeLists.txt); `make fuzz FUZZ_SECONDS=60` runs it, `make fuzz-ci` briefly.
//
// Input layout (the first bytes steer the driver, the rest is what a client sent):
//   byte 0, bits 0-3  number of cut points K (0-15): the stream is fed in K + 1 pieces
//           bits 4-5  output high-water mark: the default (64 KiB), 1, 100 or 4096 bytes
//           bit  6    move the codec into a new object after the first piece (move constructor)
//           bit  7    before the reset run, leave the codec mid-body instead of mid-headers
//   bytes 1..2K       cut points, 16-bit little-endian, each taken modulo (stream length + 1);
//                     equal cuts give empty pieces, which must be harmless
//   the rest          the stream
// Each piece is copied into its own heap block of exactly its size, so a read past the end of
// what feed() was given is a heap-buffer-overflow that ASan reports (the fuzzing counterpart of
// picohttpparser's guard-page test).
//
// Invariants checked (a violation aborts, which libFuzzer reports as a crash):
//   - per feed(): consumed <= given; need_more consumes everything; output_full leaves input and
//     only happens at or above the high-water mark; closing consumes everything; the responses
//     it reports are the ones responses_total() counts;
//   - closing() is sticky: once set, feed() appends nothing, reports no response, consumes all;
//   - responses <= request lines: every request the codec answers (other than the one error
//     response that closes the connection) was completed by http_parser, and a request line is
//     only complete at a '\n' (http_parser requires LF after the request line's CR, and accepts a
//     bare LF), so responses <= count('\n') + (closing ? 1 : 0). Not 2 per request: with
//     Debian's HTTP_PARSER_STRICT=0, the header block may end in "\r\n\r" plus any byte;
//   - output (Date value masked), response count and closing() are the same whatever the cut
//     points, the high-water mark and a move in the middle;
//   - a codec that served other input and was then reset() gives byte-identical output to a new
//     one on the same input;
//   - the fast path changes nothing: a codec with ParsePath::http_parser_only gives the same
//     output, response count and closing() as the default codec (fast_request.h's contract).
// Inputs naming /sleep or /spin are rejected (return -1: not added to the corpus): those routes
// block or burn CPU by design (up to 10 s), which would only slow the fuzzer down; their query
// parsing is the same function as /bytes', which is fuzzed.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backends/http/codec.h"
#include "backends/http/limits.h"

namespace {

using cb::http::Codec;
using cb::http::feed_status;
using cb::http::FeedResult;

[[noreturn]] void fail(const char* what, std::size_t a, std::size_t b) {
  std::fprintf(stderr, "codec_fuzz: invariant violated: %s (%zu vs %zu)\n", what, a, b);
  std::abort();
}

void check(bool ok, const char* what, std::size_t a = 0, std::size_t b = 0) {
  if (!ok) fail(what, a, b);
}

// What one run produced: a hash of the output with every Date value masked, and counts.
struct Outcome {
  std::uint64_t hash = 0xcbf29ce484222325ULL;  // FNV-1a 64 offset basis
  std::uint64_t output_bytes = 0;
  std::uint64_t responses = 0;
  bool closing = false;
};

constexpr std::string_view kDateField = "\r\nDate: ";
constexpr std::size_t kDateValueBytes = 29;  // "Sun, 06 Nov 1994 08:49:37 GMT" (IMF-fixdate)

// Masks the Date values of complete responses in `out` (a feed() appends whole responses), then
// hashes it into the outcome. The hash is streaming, so where the output was cut does not matter.
void absorb(std::string& out, Outcome& o) {
  for (std::size_t at = out.find(kDateField); at != std::string::npos; at = out.find(kDateField, at + 1)) {
    std::size_t value = at + kDateField.size();
    check(value + kDateValueBytes + 2 <= out.size(), "Date value inside the response", value, out.size());
    check(out.compare(value + kDateValueBytes, 2, "\r\n") == 0, "Date value is 29 bytes then CRLF", value, 0);
    std::memset(out.data() + value, 'D', kDateValueBytes);
  }
  for (unsigned char ch : out) {
    o.hash ^= ch;
    o.hash *= 0x100000001b3ULL;  // FNV-1a 64 prime
  }
  o.output_bytes += out.size();
  out.clear();
}

// Feeds one piece (in its own exact-size heap block) until the codec has consumed it or closed,
// flushing the output whenever the codec stops at the high-water mark.
void feed_piece(Codec& codec, std::string_view piece, std::size_t high_water, Outcome& o) {
  std::unique_ptr<char[]> block(new char[piece.size() ? piece.size() : 1]);
  if (!piece.empty()) std::memcpy(block.get(), piece.data(), piece.size());
  std::string_view left(block.get(), piece.size());
  std::string out;
  // Each round either consumes input or answers a request (output_full comes only after a
  // response, when out is non-empty, and out is flushed below): bounded by 2 * size + 2.
  for (std::size_t round = 0; round <= 2 * piece.size() + 2; ++round) {
    const bool was_closing = codec.closing();
    const std::uint64_t before = codec.responses_total();
    FeedResult r = codec.feed(left, out, high_water);
    check(r.consumed_bytes <= left.size(), "consumed <= given", r.consumed_bytes, left.size());
    check(codec.responses_total() - before == r.responses, "FeedResult.responses matches responses_total",
          r.responses, codec.responses_total() - before);
    if (was_closing) {
      check(codec.closing(), "closing() is sticky");
      check(r.status == feed_status::closing, "a closing codec reports closing", int(r.status), 0);
      check(r.responses == 0 && out.empty(), "a closing codec answers nothing more", r.responses, out.size());
    }
    switch (r.status) {
      case feed_status::need_more:
        check(!codec.closing(), "need_more only while open");
        check(r.consumed_bytes == left.size(), "need_more consumes everything", r.consumed_bytes, left.size());
        break;
      case feed_status::output_full:
        check(!codec.closing(), "output_full only while open");
        check(r.consumed_bytes < left.size(), "output_full leaves input", r.consumed_bytes, left.size());
        check(out.size() >= high_water, "output_full at the high-water mark", out.size(), high_water);
        break;
      case feed_status::closing:
        check(codec.closing(), "closing status means closing()");
        check(r.consumed_bytes == left.size(), "closing consumes everything", r.consumed_bytes, left.size());
        break;
    }
    o.responses += r.responses;
    absorb(out, o);
    left.remove_prefix(r.consumed_bytes);
    if (r.status != feed_status::output_full) {
      o.closing = codec.closing();
      return;
    }
  }
  fail("feed_piece made no progress", piece.size(), left.size());
}

struct Plan {
  std::vector<std::size_t> cuts;  // sorted offsets into the stream
  std::size_t high_water = cb::http::kOutputHighWaterBytes;
  bool move_midway = false;
  bool pollute_mid_body = false;
};

// Feeds `stream` in the pieces the plan gives, into `codec` (moved into a fresh object after the
// first piece if the plan says so). Returns the outcome.
Outcome run(Codec codec, std::string_view stream, const Plan& plan) {
  Outcome o;
  std::size_t from = 0;
  for (std::size_t i = 0; i <= plan.cuts.size(); ++i) {
    std::size_t to = i < plan.cuts.size() ? plan.cuts[i] : stream.size();
    feed_piece(codec, stream.substr(from, to - from), plan.high_water, o);
    from = to;
    if (i == 0 && plan.move_midway) {
      Codec moved(std::move(codec));
      codec = std::move(moved);  // move-assignment back: both directions exercised
    }
  }
  check(codec.responses_total() == o.responses, "responses_total is the sum over feeds", codec.responses_total(),
        o.responses);
  o.closing = codec.closing();
  return o;
}

void expect_same(const Outcome& a, const Outcome& b, const char* what) {
  if (a.hash != b.hash || a.output_bytes != b.output_bytes || a.responses != b.responses ||
      a.closing != b.closing) {
    std::fprintf(stderr,
                 "codec_fuzz: %s: outputs differ: %llu vs %llu bytes, %llu vs %llu responses, closing %d vs %d, "
                 "hash %016llx vs %016llx\n",
                 what, (unsigned long long)a.output_bytes, (unsigned long long)b.output_bytes,
                 (unsigned long long)a.responses, (unsigned long long)b.responses, a.closing, b.closing,
                 (unsigned long long)a.hash, (unsigned long long)b.hash);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t flags = data[0];
  std::size_t cut_count = flags & 0x0f;
  std::size_t header = 1 + 2 * cut_count;
  if (header > size) {
    cut_count = (size - 1) / 2;
    header = 1 + 2 * cut_count;
  }
  const std::string_view stream(reinterpret_cast<const char*>(data) + header, size - header);
  if (stream.find("/sleep") != std::string_view::npos || stream.find("/spin") != std::string_view::npos) return -1;

  Plan plan;
  static constexpr std::size_t kHighWaters[4] = {cb::http::kOutputHighWaterBytes, 1, 100, 4096};
  plan.high_water = kHighWaters[(flags >> 4) & 3];
  plan.move_midway = (flags & 0x40) != 0;
  plan.pollute_mid_body = (flags & 0x80) != 0;
  for (std::size_t i = 0; i < cut_count; ++i) {
    std::size_t v = data[1 + 2 * i] | (std::size_t{data[2 + 2 * i]} << 8);
    plan.cuts.push_back(v % (stream.size() + 1));
  }
  std::sort(plan.cuts.begin(), plan.cuts.end());

  // 1. The reference: a new codec, the whole stream in one piece, the default high-water mark.
  const Outcome whole = run(Codec(), stream, Plan{});

  std::size_t newlines = 0;
  for (char ch : stream) newlines += ch == '\n';
  check(whole.responses <= newlines + (whole.closing ? 1 : 0), "responses <= request lines (+1 error response)",
        whole.responses, newlines);

  // 2. The same stream cut where the input says, with its high-water mark and move.
  const Outcome cut = run(Codec(), stream, plan);
  expect_same(whole, cut, "one piece vs. the input's cut points");

  // 3. A codec that served other input, left in the middle of a request, then reset().
  Codec used;
  {
    Outcome ignored;
    feed_piece(used, stream, cb::http::kOutputHighWaterBytes, ignored);
    feed_piece(used,
               plan.pollute_mid_body ? std::string_view("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")
                                     : std::string_view("GET /json HTTP/1.1\r\nHost: x\r\nX-Partial: a"),
               cb::http::kOutputHighWaterBytes, ignored);
  }
  used.reset();
  check(!used.closing() && !used.mid_request() && used.responses_total() == 0, "reset() gives a new codec's state");
  const Outcome after_reset = run(std::move(used), stream, plan);
  expect_same(cut, after_reset, "new codec vs. reset codec");

  // 4. The same stream, cut the same way, through http_parser only.
  const Outcome slow = run(Codec(cb::http::ParsePath::http_parser_only), stream, plan);
  expect_same(cut, slow, "fast path vs. http_parser only");
  return 0;
}
