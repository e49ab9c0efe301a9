// Tests of the io_uring loop (backends/uring/loop.h): single mode's send linked to the next receive
// (one CQE and one io_uring_enter per sequential request), the batched wait (--uring-min-wait-us:
// requests that arrive within one min_wait share a round), and the multishot receive mode
// (io-uring --uring-recv multishot): the held queue, the ENOBUFS re-arm, the back-pressure cancel, and that
// every provided buffer goes back to the ring exactly once (LoopStats counts both sides and every
// double return). A loop runs on its own thread on 127.0.0.1 with a small buffer ring, so that the
// paths which a 256-buffer ring reaches only under load are taken on every run; clients are plain
// blocking sockets with timeouts (a failure is a failed expectation, never a hang). The conformance
// suite holds the same mode to the whole HTTP gate (tests/conformance, variant recv-multishot).
// Skipped, with the reason, where the kernel lacks io_uring or multishot receive.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "backends/http/pump.h"
#include "backends/net/socket.h"
#include "backends/stats/counters.h"
#include "backends/uring/http_session.h"
#include "backends/uring/loop.h"
#include "backends/ring/ring.h"
#include "tests/unit/date_mask.h"

namespace {

using cb::test::mask_dates;

using namespace cb;
using Clock = std::chrono::steady_clock;

constexpr std::chrono::seconds kIoTimeout{20};  // one client step; far above an honest answer

// The io-uring model's session (backends/uring/http_session.h), as servers/io_uring.cpp uses it.

using TestLoop = uring::Loop<uring::HttpSession>;

// A loop on an ephemeral port of 127.0.0.1, served on its own thread until stop().
class RunningLoop {
 public:
  explicit RunningLoop(uring::LoopConfig config) {
    net::ListenResult lr = net::open_listeners("127.0.0.1", 0, 1, 128);
    if (!lr.error.empty()) {
      error_ = lr.error;
      return;
    }
    listen_fd_ = lr.fds[0];
    port_ = lr.port;
    loop_ = std::make_unique<TestLoop>(listen_fd_, config);
    if (!loop_->ok()) {
      error_ = "loop set-up failed (printed above)";
      return;
    }
    thread_ = std::thread([this] { status_ = loop_->run(); });
  }
  ~RunningLoop() {
    stop();
    if (listen_fd_ >= 0) net::close_fd(listen_fd_);
  }
  RunningLoop(const RunningLoop&) = delete;
  RunningLoop& operator=(const RunningLoop&) = delete;

  const std::string& error() const { return error_; }
  std::uint16_t port() const { return port_; }
  // Stops the loop and joins its thread: stats() and status() are readable afterwards.
  void stop() {
    if (thread_.joinable()) {
      loop_->stop();
      thread_.join();
    }
  }
  const uring::LoopStats& stats() const { return loop_->stats(); }
  int status() const { return status_; }

 private:
  std::string error_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::unique_ptr<TestLoop> loop_;
  std::thread thread_;
  int status_ = -1;
};

// A blocking client socket (send and receive timeouts of kIoTimeout) connected to 127.0.0.1:PORT,
// or -1 with the reason on stderr. A connect interrupted by a signal (EINTR: the handshake goes
// on) is awaited; any other failure is retried a few times with a fresh socket, so that a test
// fails on what the loop does, not on a transient of the machine running it (one TSan run of the
// slow-reader test failed its first connect within 25 ms, reason not recorded).
int connect_to(std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int err = 0;
  for (int attempt = 0; attempt < 5; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(20 * attempt));
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      err = errno;
      continue;
    }
    timeval tv{};
    tv.tv_sec = kIoTimeout.count();
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int rc = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    err = rc == 0 ? 0 : errno;
    if (err == EINTR) {  // the handshake goes on: wait for it and read its outcome
      pollfd p{fd, POLLOUT, 0};
      socklen_t len = sizeof err;
      if (poll(&p, 1, static_cast<int>(kIoTimeout.count() * 1000)) != 1 ||
          getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = ETIMEDOUT;
    }
    if (err == 0) return fd;
    ::close(fd);
  }
  std::fprintf(stderr, "connect_to(127.0.0.1:%u): %s (5 attempts)\n", static_cast<unsigned>(port), std::strerror(err));
  return -1;
}

// Closes with an RST (SO_LINGER 0), as a client that gives up.
void reset(int fd) {
  linger l{};
  l.l_onoff = 1;
  l.l_linger = 0;
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  ::close(fd);
}

std::string repeat(std::string_view s, int n) {
  std::string r;
  for (int i = 0; i < n; ++i) r += s;
  return r;
}


struct Responses {
  int count = 0;            // whole 200 responses read
  std::uint64_t body_bytes = 0;
  std::string error;        // empty if all `want` arrived
  std::string bytes;        // the raw stream, if kept
};

// Reads `want` whole responses (status 200, Content-Length framing) from fd within kIoTimeout.
Responses read_responses(int fd, int want, bool keep_bytes) {
  Responses r;
  std::string buf;
  std::vector<char> chunk(64 * 1024);
  const auto deadline = Clock::now() + kIoTimeout;
  while (r.count < want) {
    for (;;) {  // every whole response buf holds
      const std::size_t end = buf.find("\r\n\r\n");
      if (end == std::string::npos) break;
      const std::string_view head(buf.data(), end);
      if (head.rfind("HTTP/1.1 200 ", 0) != 0) {
        r.error = "response " + std::to_string(r.count) + " starts '" + std::string(head.substr(0, 40)) + "'";
        return r;
      }
      const std::size_t cl = head.find("\r\nContent-Length: ");
      if (cl == std::string_view::npos) {
        r.error = "response " + std::to_string(r.count) + " has no Content-Length";
        return r;
      }
      const std::size_t len = std::strtoull(head.data() + cl + 18, nullptr, 10);
      const std::size_t total = end + 4 + len;
      if (buf.size() < total) break;
      if (keep_bytes) r.bytes.append(buf, 0, total);
      buf.erase(0, total);
      r.body_bytes += len;
      if (++r.count == want) break;
    }
    if (r.count == want) break;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      r.error = "timed out after " + std::to_string(r.count) + " of " + std::to_string(want) + " responses";
      return r;
    }
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    const ssize_t got = recv(fd, chunk.data(), chunk.size(), 0);
    if (got <= 0) {
      r.error = "connection closed after " + std::to_string(r.count) + " of " + std::to_string(want) + " responses";
      return r;
    }
    buf.append(chunk.data(), static_cast<std::size_t>(got));
  }
  return r;
}

// Skips the test where this kernel cannot run the mode (the model would exit 77 there too).
#define SKIP_UNLESS_MULTISHOT()                                                       \
  do {                                                                                \
    std::string missing = uring::probe();                                             \
    if (missing.empty()) missing = uring::probe_recv_multishot();                     \
    if (!missing.empty()) GTEST_SKIP() << "io_uring multishot receive: " << missing; \
  } while (0)

void expect_every_buffer_returned_once(const uring::LoopStats& s) {
  EXPECT_GT(s.buffers_taken, 0u) << "no receive named a provided buffer: the test did not run the mode";
  EXPECT_EQ(s.buffers_returned, s.buffers_taken) << "buffers taken from the ring and given back differ";
  EXPECT_EQ(s.buffer_misuse, 0u) << "a buffer was named while the loop held it, or given back twice";
}

uring::LoopConfig multishot_config(unsigned buffers, unsigned buffer_bytes, unsigned held) {
  uring::LoopConfig c;
  c.model = "uring_loop_test";
  c.recv = uring::RecvMode::multishot;
  c.buffers = buffers;
  c.buffer_bytes = buffer_bytes;
  c.held_buffers_per_conn = held;
  return c;
}

// Pipelined GET / on `clients` connections at once (all requests written before any response is
// read); returns the masked response stream of each connection.
std::vector<std::string> pipelined_hellos(RunningLoop& loop, int clients, int requests) {
  const std::string batch = repeat("GET / HTTP/1.1\r\nHost: x\r\n\r\n", requests);
  std::vector<int> fds;
  for (int i = 0; i < clients; ++i) {
    fds.push_back(connect_to(loop.port()));
    EXPECT_GE(fds.back(), 0) << "client " << i << " could not connect";
    if (fds.back() < 0) return {};
  }
  for (int i = 0; i < clients; ++i)
    EXPECT_TRUE(net::write_all(fds[static_cast<std::size_t>(i)], batch.data(), batch.size())) << "client " << i;
  std::vector<std::string> streams;
  for (int i = 0; i < clients; ++i) {
    Responses r = read_responses(fds[static_cast<std::size_t>(i)], requests, true);
    EXPECT_EQ(r.error, "") << "client " << i;
    EXPECT_EQ(r.count, requests) << "client " << i;
    EXPECT_EQ(r.body_bytes, std::uint64_t(requests) * 13) << "client " << i << ": bodies are not 'Hello, world!'";
    streams.push_back(mask_dates(r.bytes));
    ::close(fds[static_cast<std::size_t>(i)]);
  }
  return streams;
}

// A ring of 4 buffers of 64 bytes (a GET / is 27): each connection's 300 pipelined requests take
// many receives, the ring runs dry on every burst (the receive ends with ENOBUFS and is re-armed),
// receives complete while their connection sends (held, and past the bound of 2 spilled and the
// receive cancelled). Every response must arrive, byte-identical to single mode's, and every
// buffer go back once.
TEST(UringMultishot, TinyRingRunsDryAndEveryPipelinedResponseArrives) {
  SKIP_UNLESS_MULTISHOT();
  constexpr int kClients = 4;
  constexpr int kRequests = 300;

  uring::LoopConfig single;  // the model's default: single-shot receives, 256 x 16 KiB
  single.model = "uring_loop_test";
  RunningLoop reference(single);
  ASSERT_EQ(reference.error(), "");
  const std::vector<std::string> want = pipelined_hellos(reference, 1, kRequests);
  reference.stop();
  ASSERT_EQ(want.size(), 1u);

  RunningLoop loop(multishot_config(4, 64, 2));
  ASSERT_EQ(loop.error(), "");
  const std::vector<std::string> got = pipelined_hellos(loop, kClients, kRequests);
  loop.stop();
  EXPECT_EQ(loop.status(), 0);
  ASSERT_EQ(got.size(), std::size_t(kClients));
  for (int i = 0; i < kClients; ++i)
    EXPECT_TRUE(got[static_cast<std::size_t>(i)] == want[0])
        << "client " << i << ": multishot mode's responses (Date masked) differ from single mode's";

  const uring::LoopStats& s = loop.stats();
  expect_every_buffer_returned_once(s);
  EXPECT_GT(s.recv_nobufs, 0u) << "the 4-buffer ring never ran dry: the ENOBUFS path was not taken";
  EXPECT_GT(s.recv_arms, std::uint64_t(kClients)) << "no receive was re-armed";
  EXPECT_LE(s.held_high_water, 2u) << "a connection held more buffers than its bound";
}

// A client pipelines 200 requests for 100 kB each (20 MB of responses, more than loopback's
// socket buffers take) and does not read: the server's sends stall, its receive must pause (held
// queue at its bound of 2, the rest spilled, the receive cancelled), and the held buffers stay
// within the bound, so the thread's 16-buffer ring still serves another client. Then the slow
// client reads everything; then one more non-reader is reset mid-way and another is left stuck at
// stop: their held buffers go back too (close and stop paths).
TEST(UringMultishot, SlowReaderPausesItsReceiveAndOthersAreServed) {
  SKIP_UNLESS_MULTISHOT();
  constexpr int kRequests = 200;
  constexpr std::uint64_t kBody = 100'000;
  const std::string batch = repeat("GET /bytes?n=100000 HTTP/1.1\r\nHost: x\r\n\r\n", kRequests);

  RunningLoop loop(multishot_config(16, 1024, 2));
  ASSERT_EQ(loop.error(), "");

  const int slow = connect_to(loop.port());
  ASSERT_GE(slow, 0);
  ASSERT_TRUE(net::write_all(slow, batch.data(), batch.size())) << "the server stopped reading before 9 kB";
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // let its responses back up

  for (int i = 0; i < 3; ++i) {  // others, while the slow client's responses back up
    const int other = connect_to(loop.port());
    ASSERT_GE(other, 0);
    const std::string get = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    ASSERT_TRUE(net::write_all(other, get.data(), get.size()));
    Responses r = read_responses(other, 1, false);
    EXPECT_EQ(r.error, "") << "another client, while one does not read (request " << i << ")";
    ::close(other);
  }

  Responses all = read_responses(slow, kRequests, false);
  EXPECT_EQ(all.error, "") << "the slow client, once it reads";
  EXPECT_EQ(all.body_bytes, kBody * kRequests);
  ::close(slow);

  const int gives_up = connect_to(loop.port());
  const int stuck = connect_to(loop.port());
  ASSERT_GE(gives_up, 0);
  ASSERT_GE(stuck, 0);
  ASSERT_TRUE(net::write_all(gives_up, batch.data(), batch.size()));
  ASSERT_TRUE(net::write_all(stuck, batch.data(), batch.size()));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  reset(gives_up);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  loop.stop();  // `stuck` still has a send in flight and input held
  ::close(stuck);
  EXPECT_EQ(loop.status(), 0);

  const uring::LoopStats& s = loop.stats();
  expect_every_buffer_returned_once(s);
  EXPECT_GT(s.recv_pauses, 0u) << "the receive of a client that does not read was never paused";
  EXPECT_LE(s.held_high_water, 2u) << "a connection held more buffers than its bound";
}

// The batched wait (LoopConfig::min_wait, io-uring --uring-min-wait-us): a round's wait asks for
// one completion per open connection and settles for what it has after min_wait. Eight
// connections each send one request, 1 ms apart, well inside a 200 ms min_wait that began when
// the loop last waited: one round reaps all eight (the wait ends when the eighth arrives), where
// the first-completion wait takes a round per request (each arrives alone). The bound leaves room
// for the round that submits the answers and a tick. Every response must arrive whole.
TEST(UringBatchedWait, RequestsArrivingWithinMinWaitShareOneRound) {
  std::string missing = uring::probe();
  if (missing.empty()) missing = uring::probe_min_wait();
  if (!missing.empty()) GTEST_SKIP() << "io_uring batched wait: " << missing;
  constexpr int kConns = 8;
  uring::LoopConfig batched;
  batched.model = "uring_loop_test";
  batched.min_wait = std::chrono::milliseconds(200);
  RunningLoop loop(batched);
  ASSERT_EQ(loop.error(), "");
  const std::string get = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";
  std::vector<int> fds;
  for (int i = 0; i < kConns; ++i) {  // connected and served once: all eight are open in the loop
    const int fd = connect_to(loop.port());
    ASSERT_GE(fd, 0);
    fds.push_back(fd);
    ASSERT_EQ(send(fd, get.data(), get.size(), MSG_NOSIGNAL), static_cast<ssize_t>(get.size()));
    ASSERT_EQ(read_responses(fd, 1, false).error, "") << "connection " << i;
  }
  const auto before = stats::merged_counters();
  for (int fd : fds) {
    ASSERT_EQ(send(fd, get.data(), get.size(), MSG_NOSIGNAL), static_cast<ssize_t>(get.size()));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  for (int i = 0; i < kConns; ++i) EXPECT_EQ(read_responses(fds[i], 1, false).error, "") << "connection " << i;
  const auto after = stats::merged_counters();
  const auto delta = [&](stats::Counter c) {
    return after[static_cast<std::size_t>(c)] - before[static_cast<std::size_t>(c)];
  };
  EXPECT_LE(delta(stats::Counter::ring_enters), std::uint64_t(3))
      << "io_uring_enter calls for " << kConns << " requests that arrived within one min_wait";
  for (int fd : fds) ::close(fd);
  loop.stop();
  EXPECT_EQ(loop.status(), 0);
}

}  // namespace

// Single mode links a keep-alive response's send to the connection's next receive, the send
// posting no CQE when it goes out whole (backends/uring/loop.h): one client asking 200 requests one
// at a time then costs about one CQE and one io_uring_enter per request, where reaping each send's
// CQE in a round of its own cost two of each (the send completes inside the submitting enter and
// satisfies its wait). Deterministic: with one client no round can gather two requests. Then a
// "Connection: close" request (no link: the state after the send is close) must still be answered
// and closed, and a 4 MiB response to a client that reads it slowly must arrive whole (the send
// waits with MSG_WAITALL, the linked receive after it).
TEST(UringSingle, LinkedSendCostsOneEnterAndOneCompletionPerRequest) {
  const std::string missing = uring::probe();
  if (!missing.empty()) GTEST_SKIP() << "io_uring: " << missing;
  constexpr int kRequests = 200;
  uring::LoopConfig single;
  single.model = "uring_loop_test";
  RunningLoop loop(single);
  ASSERT_EQ(loop.error(), "");
  const int fd = connect_to(loop.port());
  ASSERT_GE(fd, 0);
  const std::string get = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";
  ASSERT_EQ(send(fd, get.data(), get.size(), MSG_NOSIGNAL), static_cast<ssize_t>(get.size()));
  ASSERT_EQ(read_responses(fd, 1, false).error, "");  // connected and served: counts start here
  const auto before = stats::merged_counters();
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_EQ(send(fd, get.data(), get.size(), MSG_NOSIGNAL), static_cast<ssize_t>(get.size()));
    const Responses r = read_responses(fd, 1, false);
    ASSERT_EQ(r.error, "") << "request " << i;
  }
  const auto after = stats::merged_counters();
  const auto delta = [&](stats::Counter c) {
    return after[static_cast<std::size_t>(c)] - before[static_cast<std::size_t>(c)];
  };
  // The loop's thread may be a few events behind the merge: the bounds leave room for that and for
  // a tick (the idle sweep's round) or two.
  EXPECT_LE(delta(stats::Counter::ring_enters), std::uint64_t(kRequests + kRequests / 10))
      << "io_uring_enter calls for " << kRequests << " sequential requests (2 per request without the link)";
  EXPECT_LE(delta(stats::Counter::cq_completions), std::uint64_t(kRequests + kRequests / 10))
      << "CQEs for " << kRequests << " sequential requests (a successful linked send posts none)";
  EXPECT_GE(delta(stats::Counter::cq_completions), std::uint64_t(kRequests - kRequests / 10));

  const std::string big = "GET /bytes?n=4194304 HTTP/1.1\r\nHost: t\r\n\r\n";
  ASSERT_EQ(send(fd, big.data(), big.size(), MSG_NOSIGNAL), static_cast<ssize_t>(big.size()));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the send fills the socket and waits
  Responses r = read_responses(fd, 1, false);
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.body_bytes, 4194304u);

  const std::string close_req = "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
  ASSERT_EQ(send(fd, close_req.data(), close_req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(close_req.size()));
  r = read_responses(fd, 1, false);
  ASSERT_EQ(r.error, "");
  char byte;
  EXPECT_EQ(recv(fd, &byte, 1, 0), 0) << "the connection was not closed after Connection: close";
  ::close(fd);
  loop.stop();
  EXPECT_EQ(loop.status(), 0);
}
