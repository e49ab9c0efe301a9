// NbSession (backends/net/nb_session.*) over a socketpair: the I/O half of a connection for the
// non-blocking models, driven here the way a reactor drives it (on_readable while it wants to
// read, on_writable while it wants to write). Covers pipelined bursts, a response larger than the
// socket buffer, a peer that pipelines and never reads, EOF, closing responses and a peer that
// goes away; and serve_blocking for the blocking models.
#include <gtest/gtest.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "backends/http/limits.h"
#include "backends/net/blocking_session.h"
#include "backends/net/nb_session.h"
#include "backends/net/socket.h"
#include "tests/unit/date_mask.h"

namespace {

using cb::test::mask_dates;

using cb::net::IoScratch;
using cb::net::NbSession;
using cb::net::want;

// Replaces every Date value (29 bytes) with "DATE", 25 bytes shorter.
constexpr std::size_t kDateMaskedAway = 29 - 4;

std::string response(std::string_view status, std::string_view content_type, std::string_view body,
                     std::string_view connection = "") {
  std::string r = "HTTP/1.1 ";
  r += status;
  r += "\r\nServer: cbench\r\nDate: DATE\r\nContent-Type: ";
  r += content_type;
  r += "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  if (!connection.empty()) r += "Connection: " + std::string(connection) + "\r\n";
  r += "\r\n";
  r += body;
  return r;
}
const std::string kHello = response("200 OK", "text/plain", "Hello, world!");
const std::string kJson = response("200 OK", "application/json", "{\"message\":\"Hello, World!\"}");
const std::string kGet = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";
const std::string kGetJson = "GET /json HTTP/1.1\r\nHost: t\r\n\r\n";

struct Pair {
  int server = -1;
  int client = -1;
  explicit Pair(bool nonblocking_server = true) {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) throw std::runtime_error("socketpair");
    server = fds[0];
    client = fds[1];
    if (nonblocking_server) cb::net::set_nonblocking(server);
    cb::net::set_nonblocking(client);
  }
  ~Pair() {
    if (server >= 0) close(server);
    if (client >= 0) close(client);
  }
  void close_client() {
    close(client);
    client = -1;
  }
};

// Appends everything waiting on a non-blocking fd to `into`; returns the byte count.
std::size_t drain(int fd, std::string& into) {
  char buf[64 * 1024];
  std::size_t got = 0;
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) return got;
    into.append(buf, static_cast<std::size_t>(n));
    got += static_cast<std::size_t>(n);
  }
}

// Writes as much of s[from..] as the non-blocking fd takes; returns the new offset.
std::size_t write_some(int fd, std::string_view s, std::size_t from) {
  while (from < s.size()) {
    ssize_t n = write(fd, s.data() + from, s.size() - from);
    if (n <= 0) break;
    from += static_cast<std::size_t>(n);
  }
  return from;
}

int bytes_queued(int fd) {
  int n = 0;
  ioctl(fd, FIONREAD, &n);
  return n;
}

// One reactor step: what the session asked for last decides which handler runs.
want step(NbSession& s, IoScratch& scratch, want w) {
  return w == want::write ? s.on_writable(scratch) : s.on_readable(scratch);
}

TEST(NbSession, PipelinedBurstAnsweredInOrder) {
  Pair pair;
  auto scratch = std::make_unique<IoScratch>();
  NbSession s(pair.server);
  EXPECT_FALSE(s.take_progress());
  std::string burst, expected;
  for (int i = 0; i < 64; ++i) {
    burst += i % 3 == 0 ? kGetJson : kGet;
    expected += i % 3 == 0 ? kJson : kHello;
  }
  ASSERT_EQ(write_some(pair.client, burst, 0), burst.size());
  EXPECT_EQ(s.on_readable(*scratch), want::read);
  std::string got;
  drain(pair.client, got);
  EXPECT_EQ(mask_dates(got), expected);
  EXPECT_TRUE(s.take_progress());
  EXPECT_FALSE(s.take_progress());  // once
  // Nothing to read: still want::read, no progress.
  EXPECT_EQ(s.on_readable(*scratch), want::read);
  EXPECT_FALSE(s.take_progress());
}

// A request split across readiness events: the codec keeps the partial request.
TEST(NbSession, RequestSplitAcrossReads) {
  Pair pair;
  auto scratch = std::make_unique<IoScratch>();
  NbSession s(pair.server);
  const std::string req = kGetJson + kGet;
  std::string got;
  for (char ch : req) {
    ASSERT_EQ(write(pair.client, &ch, 1), 1);
    ASSERT_EQ(s.on_readable(*scratch), want::read);
  }
  drain(pair.client, got);
  EXPECT_EQ(mask_dates(got), kJson + kHello);
}

// A response larger than the socket buffer: want::write, then on_writable finishes it as the peer
// reads. While output is pending the session does not read (a second request waits in the socket).
TEST(NbSession, ResponseLargerThanSocketBuffer) {
  Pair pair;
  auto scratch = std::make_unique<IoScratch>();
  NbSession s(pair.server);
  int sndbuf = 0;
  socklen_t len = sizeof sndbuf;
  getsockopt(pair.server, SOL_SOCKET, SO_SNDBUF, &sndbuf, &len);
  ASSERT_LT(static_cast<std::size_t>(sndbuf), cb::http::kMaxBytesBody);

  const std::string big = response("200 OK", "text/plain", std::string(cb::http::kMaxBytesBody, 'x'));
  std::string req = "GET /bytes?n=4194304 HTTP/1.1\r\nHost: t\r\n\r\n";
  ASSERT_EQ(write_some(pair.client, req, 0), req.size());
  ASSERT_EQ(s.on_readable(*scratch), want::write);
  EXPECT_GT(s.held_bytes(), big.size() / 2);

  // Spurious readability while output is pending: nothing is read.
  ASSERT_EQ(write_some(pair.client, kGetJson, 0), kGetJson.size());
  EXPECT_EQ(s.on_readable(*scratch), want::write);
  EXPECT_EQ(bytes_queued(pair.server), static_cast<int>(kGetJson.size()));

  std::string got;
  want w = want::write;
  int writable_calls = 0;
  while (w == want::write && writable_calls < 100000) {
    // No progress without the peer reading.
    if (writable_calls == 0) {
      ASSERT_EQ(s.on_writable(*scratch), want::write);
    }
    drain(pair.client, got);
    w = s.on_writable(*scratch);
    ++writable_calls;
  }
  EXPECT_EQ(w, want::read);
  EXPECT_GT(writable_calls, 1);
  drain(pair.client, got);
  EXPECT_TRUE(mask_dates(got) == big) << "got " << got.size() << " bytes, expected " << big.size();
  // The large buffer is not kept once flushed.
  EXPECT_LE(s.held_bytes(), cb::http::kOutputHighWaterBytes);

  // Then the request that waited in the socket.
  EXPECT_EQ(s.on_readable(*scratch), want::read);
  got.clear();
  drain(pair.client, got);
  EXPECT_EQ(mask_dates(got), kJson);
}

// A client that pipelines and never reads: the server stops reading, and what it holds stays near
// one high-water mark plus one response (plus the unparsed rest of one read). When the client
// finally reads, every response arrives, in order.
TEST(NbSession, PeerThatNeverReadsIsBounded) {
  constexpr std::size_t kRequests = 1000;
  constexpr std::size_t kBody = 60000;
  Pair pair;
  int small = 16 * 1024;  // the client's requests back up sooner
  setsockopt(pair.client, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  auto scratch = std::make_unique<IoScratch>();
  NbSession s(pair.server);
  // Padded requests, so that the client's socket buffer fills with a thousand of them.
  const std::string one = "GET /bytes?n=60000 HTTP/1.1\r\nHost: t\r\nX-Pad: " + std::string(400, 'p') + "\r\n\r\n";
  std::string input;
  for (std::size_t i = 0; i < kRequests; ++i) input += one;
  const std::string one_response = response("200 OK", "text/plain", std::string(kBody, 'x'));
  const std::size_t one_response_bytes = one_response.size() + kDateMaskedAway;
  const std::size_t bound = cb::http::kOutputHighWaterBytes + one_response.size() + cb::http::kReadBufferBytes;

  // Phase 1: the client writes and never reads.
  std::size_t written = 0, max_held = 0;
  want w = want::read;
  for (int i = 0; i < 500; ++i) {
    written = write_some(pair.client, input, written);
    w = step(s, *scratch, w);
    ASSERT_NE(w, want::close);
    max_held = std::max(max_held, s.held_bytes());
  }
  EXPECT_EQ(w, want::write);
  EXPECT_LT(written, input.size()) << "the client was never pushed back";
  EXPECT_GT(bytes_queued(pair.server), 0) << "the server read everything";
  EXPECT_LE(max_held, bound);
  // What the server produced so far: what waits in the client's receive queue plus what it holds.
  EXPECT_LT(static_cast<std::size_t>(bytes_queued(pair.client)), 4 * 1024 * 1024u);
  RecordProperty("max_held_bytes", static_cast<int>(max_held));

  // Phase 2: the client reads; every response arrives, whole and in order.
  std::string pending;
  std::size_t responses = 0;
  bool in_order = true;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (responses < kRequests && std::chrono::steady_clock::now() < deadline) {
    written = write_some(pair.client, input, written);
    drain(pair.client, pending);
    while (pending.size() >= one_response_bytes) {
      if (mask_dates(std::string_view(pending).substr(0, one_response_bytes)) != one_response) in_order = false;
      pending.erase(0, one_response_bytes);
      ++responses;
    }
    w = step(s, *scratch, w);
    ASSERT_NE(w, want::close);
    max_held = std::max(max_held, s.held_bytes());
  }
  EXPECT_EQ(responses, kRequests);
  EXPECT_TRUE(in_order);
  EXPECT_EQ(pending.size(), 0u);
  EXPECT_LE(max_held, bound);
}

TEST(NbSession, EofIsClose) {
  struct Row {
    const char* label;
    std::string sent;
    std::string expected;
  };
  const Row rows[] = {
      {"EOF at once", "", ""},
      {"EOF after a request", kGet, kHello},
      {"EOF mid-request", "GET /json HT", ""},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.label);
    Pair pair;
    auto scratch = std::make_unique<IoScratch>();
    NbSession s(pair.server);
    ASSERT_EQ(write_some(pair.client, row.sent, 0), row.sent.size());
    shutdown(pair.client, SHUT_WR);
    want w = want::read;
    int calls = 0;
    while (w == want::read && calls < 3) w = s.on_readable(*scratch), ++calls;
    EXPECT_EQ(w, want::close);
    std::string got;
    drain(pair.client, got);
    EXPECT_EQ(mask_dates(got), row.expected);
  }
}

// A closing response (Connection: close, HTTP/1.0, or a 4xx for bad input) is written whole, then
// want::close; requests pipelined after it are not answered.
TEST(NbSession, ClosingResponseThenClose) {
  struct Row {
    const char* label;
    std::string sent;
    std::string expected;
  };
  const Row rows[] = {
      {"Connection: close", kGet + "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" + kGet,
       kHello + response("200 OK", "text/plain", "Hello, world!", "close")},
      {"HTTP/1.0", "GET /json HTTP/1.0\r\n\r\n" + kGet,
       response("200 OK", "application/json", "{\"message\":\"Hello, World!\"}", "close")},
      {"garbage", "\x16\x03\x01" + kGet, response("400 Bad Request", "text/plain", "400 Bad Request\n", "close")},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.label);
    Pair pair;
    auto scratch = std::make_unique<IoScratch>();
    NbSession s(pair.server);
    ASSERT_EQ(write_some(pair.client, row.sent, 0), row.sent.size());
    EXPECT_EQ(s.on_readable(*scratch), want::close);
    std::string got;
    drain(pair.client, got);
    EXPECT_EQ(mask_dates(got), row.expected);
  }
  // A large closing response: want::write first, want::close only once it is all written.
  Pair pair;
  auto scratch = std::make_unique<IoScratch>();
  NbSession s(pair.server);
  std::string req = "GET /bytes?n=1000000 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
  ASSERT_EQ(write_some(pair.client, req, 0), req.size());
  want w = s.on_readable(*scratch);
  EXPECT_EQ(w, want::write);
  std::string got;
  for (int i = 0; i < 100000 && w == want::write; ++i) {
    drain(pair.client, got);
    w = s.on_writable(*scratch);
  }
  EXPECT_EQ(w, want::close);
  drain(pair.client, got);
  EXPECT_EQ(got.size(), response("200 OK", "text/plain", std::string(1000000, 'x'), "close").size() + kDateMaskedAway);
}

// The peer goes away with output pending: on_writable says close (and no SIGPIPE kills the test).
TEST(NbSession, PeerGoneWhileWriting) {
  Pair pair;
  auto scratch = std::make_unique<IoScratch>();
  NbSession s(pair.server);
  std::string req = "GET /bytes?n=4194304 HTTP/1.1\r\nHost: t\r\n\r\n";
  ASSERT_EQ(write_some(pair.client, req, 0), req.size());
  ASSERT_EQ(s.on_readable(*scratch), want::write);
  pair.close_client();
  EXPECT_EQ(s.on_writable(*scratch), want::close);
}

// serve_blocking (the blocking models' loop) on the same kind of pair.
TEST(ServeBlocking, AnswersUntilClose) {
  Pair pair(false);
  auto scratch = std::make_unique<IoScratch>();
  std::string sent = kGet + kGetJson + "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n" + "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" + kGet;
  ASSERT_EQ(write_some(pair.client, sent, 0), sent.size());
  EXPECT_EQ(cb::net::serve_blocking(pair.server, 5000, *scratch), 4u);
  std::string got;
  drain(pair.client, got);
  EXPECT_EQ(mask_dates(got), kHello + kJson + response("404 Not Found", "text/plain", "404 Not Found\n") +
                                 response("200 OK", "text/plain", "Hello, world!", "close"));
}

TEST(ServeBlocking, HighWaterMarkKeepsOrder) {
  Pair pair(false);
  auto scratch = std::make_unique<IoScratch>();
  std::string sent;
  for (int i = 0; i < 4; ++i) sent += "GET /bytes?n=30000 HTTP/1.1\r\nHost: t\r\n\r\n";
  sent += "GET /json HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
  ASSERT_EQ(write_some(pair.client, sent, 0), sent.size());
  EXPECT_EQ(cb::net::serve_blocking(pair.server, 5000, *scratch), 5u);
  std::string got;
  drain(pair.client, got);
  std::string expected;
  for (int i = 0; i < 4; ++i) expected += response("200 OK", "text/plain", std::string(30000, 'x'));
  expected += response("200 OK", "application/json", "{\"message\":\"Hello, World!\"}", "close");
  EXPECT_TRUE(mask_dates(got) == expected) << got.size() << " bytes vs " << expected.size();
}

TEST(ServeBlocking, IdleTimeout) {
  Pair pair(false);
  auto scratch = std::make_unique<IoScratch>();
  ASSERT_EQ(write_some(pair.client, std::string("GET / HT"), 0), 8u);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(cb::net::serve_blocking(pair.server, 100, *scratch), 0u);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_GE(ms, 90);
  EXPECT_LT(ms, 2000);
}

}  // namespace
