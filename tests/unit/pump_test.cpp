// Table-driven tests of http::Pump (backends/http/pump.*), the one "bytes in, responses out" seam
// of every model. One line per case with a label. Every case is fed in one piece, one byte at a
// time and split at every byte boundary (two pieces), and its output is written back with every
// write size from 1 byte to unlimited (partial writes), in both staging forms (the thread's
// buffer lent per turn, and the pump's own). Every combination must give exactly the bytes the
// codec gives for the whole input at once (Date values masked): the pump adds no byte, drops none
// and reorders none. Each piece ends at a guard page (a read past it crashes) and is overwritten
// as soon as feed() returns (a pump that kept a pointer into the caller's bytes would answer
// garbage), which is the contract a completion-based model relies on.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "backends/http/codec.h"
#include "backends/http/limits.h"
#include "backends/http/pump.h"
#include "tests/unit/guarded_buffer.h"
#include "tests/unit/date_mask.h"

namespace {

using cb::test::mask_dates;

using cb::http::Codec;
using cb::http::kOutputHighWaterBytes;
using cb::http::kReadBufferBytes;
using cb::http::Pump;
using cb::http::pump_state;

constexpr std::size_t kUnlimited = std::numeric_limits<std::size_t>::max();


std::string repeat(std::string_view s, int n) {
  std::string r;
  for (int i = 0; i < n; ++i) r += s;
  return r;
}

using cb::test::GuardedBuffer;  // tests/unit/guarded_buffer.h

// What the codec answers to the whole input in one feed, with no output bound: the reference.
std::string codec_reference(std::string_view input) {
  Codec codec;
  std::string out;
  codec.feed(input, out, kUnlimited);
  return mask_dates(out);
}

enum class Staging { lent, own };

struct Drive {
  std::string output;               // every byte written, Date masked
  std::vector<std::size_t> writes;  // the size of every write
  pump_state final_state = pump_state::read;
  std::size_t held_after = 0;       // held_bytes() after the last turn
};

// Drives a pump as a model does: feed a piece while the pump wants input, write its output in
// writes of at most write_cap bytes (consumed() after each), end the turn; stop feeding once the
// pump says close.
Drive drive(const std::vector<std::string_view>& pieces, std::size_t write_cap, Staging staging, GuardedBuffer& guard) {
  Pump pump;
  std::string thread_staging;
  Drive run;
  std::string raw;
  for (std::string_view piece : pieces) {
    if (pump.state() == pump_state::close) break;
    EXPECT_EQ(pump.state(), pump_state::read);
    std::string_view placed = guard.place(piece);
    if (staging == Staging::lent) pump.feed(placed, thread_staging);
    else pump.feed(placed);
    GuardedBuffer::scribble(placed);
    while (pump.state() == pump_state::write) {
      std::string_view out = pump.output();
      std::size_t n = std::min(write_cap, out.size());
      raw.append(out.substr(0, n));
      run.writes.push_back(n);
      pump.consumed(n);
    }
    if (staging == Staging::lent) pump.lend_back(thread_staging);
  }
  run.output = mask_dates(raw);
  run.final_state = pump.state();
  run.held_after = pump.held_bytes();
  return run;
}

struct Case {
  const char* label;
  std::string input;
  pump_state final_state;  // after the whole input
};

const std::string kGet = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";
const std::string kWrkGet = "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";
const std::string kGetJson = "GET /json HTTP/1.1\r\nHost: t\r\n\r\n";

const std::vector<Case>& cases() {
  static const std::vector<Case> kCases = {
      {"one GET", kGet, pump_state::read},
      {"pipelined 3 GET", repeat(kGet, 3), pump_state::read},
      {"wrk batch of 16", repeat(kWrkGet, 16), pump_state::read},
      {"mixed routes", kGet + kGetJson + kGet, pump_state::read},
      {"partial request at the end", kGet + "GET /json HTTP/1.1\r\nHo", pump_state::read},
      {"HTTP/1.0 closes", "GET / HTTP/1.0\r\n\r\n" + kGet, pump_state::close},
      {"HTTP/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + kGet, pump_state::read},
      {"Connection: close mid-pipeline", kGet + "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" + kGet,
       pump_state::close},
      {"malformed then more", kGet + "BLAH\r\n\r\n" + kGet, pump_state::close},
      {"missing Host", "GET / HTTP/1.1\r\n\r\n", pump_state::close},
      {"POST with a body", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello" + kGet, pump_state::read},
      {"chunked body", "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + kGet,
       pump_state::read},
      {"HEAD", "HEAD / HTTP/1.1\r\nHost: t\r\n\r\n" + kGet, pump_state::read},
      // Past the output high-water mark: the pump holds the unparsed rest and parses it as its
      // output is consumed.
      {"past the high-water mark", repeat("GET /bytes?n=20000 HTTP/1.1\r\nHost: t\r\n\r\n", 9), pump_state::read},
      {"high-water then close", repeat("GET /bytes?n=40000 HTTP/1.1\r\nHost: t\r\n\r\n", 3) + "BLAH\r\n\r\n" + kGet,
       pump_state::close},
  };
  return kCases;
}

constexpr std::size_t kWriteCaps[] = {1, 7, 100, 4096, kUnlimited};

std::size_t max_input_bytes() {
  std::size_t m = 0;
  for (const Case& c : cases()) m = std::max(m, c.input.size());
  return m;
}

void expect_run(const Case& c, const Drive& run, const std::string& expected, const std::string& how) {
  EXPECT_EQ(run.output, expected) << c.label << ", " << how;
  EXPECT_EQ(run.final_state, c.final_state) << c.label << ", " << how;
}

TEST(Pump, OnePieceEveryWriteSize) {
  GuardedBuffer guard(max_input_bytes());
  for (const Case& c : cases()) {
    const std::string expected = codec_reference(c.input);
    ASSERT_FALSE(expected.empty()) << c.label;
    for (Staging s : {Staging::lent, Staging::own})
      for (std::size_t cap : kWriteCaps)
        expect_run(c, drive({c.input}, cap, s, guard), expected,
                   "one piece, write cap " + std::to_string(cap) + (s == Staging::lent ? ", lent" : ", own"));
  }
}

TEST(Pump, EverySplitPoint) {
  GuardedBuffer guard(max_input_bytes());
  for (const Case& c : cases()) {
    const std::string expected = codec_reference(c.input);
    // The large cases have tens of thousands of split points: every 97th keeps them quick while
    // still crossing request, header and high-water boundaries.
    const std::size_t step = c.input.size() > 1000 ? 97 : 1;
    for (std::size_t at = 0; at <= c.input.size(); at += step) {
      std::vector<std::string_view> pieces = {std::string_view(c.input).substr(0, at),
                                              std::string_view(c.input).substr(at)};
      for (Staging s : {Staging::lent, Staging::own})
        for (std::size_t cap : {std::size_t{7}, kUnlimited})
          expect_run(c, drive(pieces, cap, s, guard), expected,
                     "split at " + std::to_string(at) + ", write cap " + std::to_string(cap) +
                         (s == Staging::lent ? ", lent" : ", own"));
    }
  }
}

TEST(Pump, OneByteAtATime) {
  GuardedBuffer guard(max_input_bytes());
  for (const Case& c : cases()) {
    if (c.input.size() > 2000) continue;  // covered by the split test
    std::vector<std::string_view> pieces;
    for (std::size_t i = 0; i < c.input.size(); ++i) pieces.push_back(std::string_view(c.input).substr(i, 1));
    for (Staging s : {Staging::lent, Staging::own})
      expect_run(c, drive(pieces, 3, s, guard), codec_reference(c.input), "one byte at a time");
  }
}

// The write sizes are the pump's, not the model's: one write per feed while the output fits
// under the high-water mark, whichever staging form is used.
TEST(Pump, WriteSizesFollowTheFeeds) {
  GuardedBuffer guard(4096);
  const std::string batch = repeat(kWrkGet, 16);
  for (Staging s : {Staging::lent, Staging::own}) {
    Drive run = drive({batch, batch, kGet}, kUnlimited, s, guard);
    ASSERT_EQ(run.writes.size(), 3u);
    EXPECT_EQ(run.writes[0], run.writes[1]);
    EXPECT_EQ(run.writes[0], 16 * run.writes[2]);  // the same hello response, 16 times
  }
  // Past the high-water mark: one write per stop (each a little over the mark), then the rest.
  const std::string big = repeat("GET /bytes?n=20000 HTTP/1.1\r\nHost: t\r\n\r\n", 9);
  Drive run = drive({big}, kUnlimited, Staging::lent, guard);
  ASSERT_EQ(run.writes.size(), 3u);  // 4 responses reach the mark, 4 more, then the last one
  EXPECT_GE(run.writes[0], kOutputHighWaterBytes);
  EXPECT_GE(run.writes[1], kOutputHighWaterBytes);
  EXPECT_LT(run.writes[2], kOutputHighWaterBytes);
}

// Lent staging: an idle connection holds no buffer; the thread's buffer comes back.
TEST(Pump, LentStagingLeavesNothingOnAnIdleConnection) {
  Pump pump;
  std::string staging;
  staging.reserve(4096);
  const char* thread_buffer = staging.data();
  pump.feed(repeat(kGet, 4), staging);
  ASSERT_EQ(pump.state(), pump_state::write);
  EXPECT_EQ(pump.output().data(), thread_buffer) << "the pump should stage into the thread's buffer";
  pump.consumed(pump.output().size());
  pump.lend_back(staging);
  EXPECT_EQ(pump.held_bytes(), 0u);
  EXPECT_EQ(staging.data(), thread_buffer) << "the thread's buffer was not given back";
  EXPECT_TRUE(pump.take_progress());
  EXPECT_FALSE(pump.take_progress());
}

// A partial write keeps the buffer (and its bytes) with the pump across lend_back; the thread
// grows another buffer for its next connection, and both come back to one after the drain.
TEST(Pump, PartialWriteKeepsTheBufferUntilDrained) {
  Pump a, b;
  std::string staging;
  staging.reserve(4096);
  a.feed(repeat(kGet, 4), staging);
  std::string_view first = a.output();
  a.consumed(10);
  const std::string rest(a.output());
  a.lend_back(staging);  // output pending: keeps it
  EXPECT_EQ(a.output(), rest) << "pending output moved or changed across lend_back";
  EXPECT_EQ(a.output().data(), first.data() + 10);
  b.feed(kGet, staging);  // another connection on the same thread meanwhile
  b.consumed(b.output().size());
  b.lend_back(staging);
  EXPECT_EQ(b.held_bytes(), 0u);
  a.consumed(a.output().size());
  a.lend_back(staging);
  EXPECT_EQ(a.held_bytes(), 0u);
  EXPECT_GE(staging.capacity(), 4096u);
}

// Own staging: a small buffer is kept for the next feed, one grown past the high-water mark by a
// large body is released once written.
TEST(Pump, OwnBufferReleasedAfterALargeBody) {
  Pump pump;
  pump.feed(kGet);
  pump.consumed(pump.output().size());
  EXPECT_GT(pump.held_bytes(), 0u);
  EXPECT_LE(pump.held_bytes(), kOutputHighWaterBytes);
  pump.feed("GET /bytes?n=200000 HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_GT(pump.output().size(), 200000u);
  pump.consumed(pump.output().size());
  EXPECT_EQ(pump.held_bytes(), 0u);
}

// A client that pipelines without reading: what the pump holds is bounded by one feed of input
// plus the high-water mark plus one response, however much it is fed.
TEST(Pump, BacklogIsBoundedByOneFeed) {
  Pump pump;
  const std::string feed = repeat("GET /bytes?n=30000 HTTP/1.1\r\nHost: t\r\n\r\n", 400).substr(0, kReadBufferBytes);
  pump.feed(feed);
  EXPECT_EQ(pump.state(), pump_state::write);
  EXPECT_LE(pump.output().size(), kOutputHighWaterBytes + 30000 + 200);
  EXPECT_LE(pump.held_bytes(), 2 * (kOutputHighWaterBytes + 30000 + 200) + kReadBufferBytes);
  // Draining lets the backlog be parsed a high-water mark at a time, never more.
  std::size_t rounds = 0;
  while (pump.state() == pump_state::write) {
    EXPECT_LE(pump.output().size(), kOutputHighWaterBytes + 30000 + 200);
    pump.consumed(pump.output().size());
    ++rounds;
  }
  EXPECT_GT(rounds, 2u);
  EXPECT_EQ(pump.state(), pump_state::read);
  EXPECT_EQ(pump.responses_total(), feed.size() / 40) << "every complete request answered";
  EXPECT_EQ(pump.mid_request(), feed.size() % 40 != 0);
}

TEST(Pump, CountsResponses) {
  Pump pump;
  std::string staging;
  pump.feed(repeat(kWrkGet, 16), staging);
  pump.consumed(pump.output().size());
  pump.lend_back(staging);
  EXPECT_EQ(pump.responses_total(), 16u);
  EXPECT_FALSE(pump.mid_request());
}

}  // namespace
