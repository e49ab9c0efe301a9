// net::Acceptor and the blocking accept: the batch bound, the pause when the process is out of
// descriptors and its resume at the sweep, and the accepts and closes counters every model reads.
#include "backends/net/accept.h"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <vector>

#include "backends/net/socket.h"
#include "backends/stats/counters.h"

namespace {

using cb::net::accept_status;
using cb::stats::Counter;

std::uint64_t counted(Counter c) { return cb::stats::merged_counters()[static_cast<std::size_t>(c)]; }

// A non-blocking listener on 127.0.0.1 with a free port, and clients connected to it (the kernel
// completes the handshakes into the backlog before anyone accepts).
struct Rig {
  explicit Rig(int clients) {
    cb::net::ListenResult lr = cb::net::open_listeners("127.0.0.1", 0, 1, 1024);
    EXPECT_EQ(lr.error, "");
    listen_fd = lr.fds.at(0);
    EXPECT_TRUE(cb::net::set_nonblocking(listen_fd));
    for (int i = 0; i < clients; ++i) {
      int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(lr.port);
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
      client_fds.push_back(fd);
    }
  }
  ~Rig() {
    for (int fd : client_fds) ::close(fd);
    for (int fd : accepted) ::close(fd);
    ::close(listen_fd);
  }

  // One readiness event: accepts into `accepted`; counts unwatch calls.
  accept_status readable(cb::net::Acceptor& a) {
    return a.on_readable([this](int fd) { accepted.push_back(fd); }, [this] { ++unwatched; });
  }

  int listen_fd = -1;
  std::vector<int> client_fds;
  std::vector<int> accepted;
  int unwatched = 0;
};

// Each row: clients waiting, then what successive readiness events accept (the bound first).
struct BatchCase {
  const char* label;
  int clients;
  std::vector<std::size_t> accepted_after_each_event;
};

TEST(Acceptor, AcceptsAtMostOneBatchPerReadinessEvent) {
  constexpr auto kBatch = static_cast<std::size_t>(cb::net::kMaxAcceptsPerEvent);
  const BatchCase cases[] = {
      {"none waiting", 0, {0, 0}},
      {"fewer than a batch", 3, {3, 3}},
      {"exactly a batch", 64, {kBatch, kBatch}},
      {"a batch and some", 70, {kBatch, 70}},
  };
  for (const BatchCase& c : cases) {
    SCOPED_TRACE(c.label);
    Rig rig(c.clients);
    cb::net::Acceptor acceptor(rig.listen_fd);
    const std::uint64_t accepts_before = counted(Counter::accepts);
    for (std::size_t want : c.accepted_after_each_event) {
      EXPECT_EQ(rig.readable(acceptor), accept_status::again);
      EXPECT_EQ(rig.accepted.size(), want);
    }
    EXPECT_EQ(counted(Counter::accepts) - accepts_before, static_cast<std::uint64_t>(c.clients));
    EXPECT_EQ(rig.unwatched, 0);
    EXPECT_FALSE(acceptor.paused());
  }
}

TEST(Acceptor, OutOfDescriptorsUnwatchesUntilTheSweepWatchesAgain) {
  Rig rig(3);
  cb::net::Acceptor acceptor(rig.listen_fd);
  // The soft limit at the lowest free descriptor: the next accept fails with EMFILE.
  int probe = ::dup(0);
  ASSERT_GE(probe, 0);
  ::close(probe);
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit low = saved;
  low.rlim_cur = static_cast<rlim_t>(probe);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  accept_status status = rig.readable(acceptor);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);

  EXPECT_EQ(status, accept_status::out_of_descriptors);
  EXPECT_EQ(rig.unwatched, 1);
  EXPECT_TRUE(acceptor.paused());
  EXPECT_TRUE(rig.accepted.empty());

  int watch_calls = 0;
  acceptor.on_sweep([&] { return ++watch_calls, false; });  // the loop could not watch it yet
  EXPECT_TRUE(acceptor.paused());
  acceptor.on_sweep([&] { return ++watch_calls, true; });
  EXPECT_FALSE(acceptor.paused());
  acceptor.on_sweep([&] { return ++watch_calls, true; });  // not paused: nothing to do
  EXPECT_EQ(watch_calls, 2);

  EXPECT_EQ(rig.readable(acceptor), accept_status::again);
  EXPECT_EQ(rig.accepted.size(), 3u);
}

TEST(Acceptor, CloseConnectionCountsACloseAndClosesTheDescriptor) {
  Rig rig(1);
  cb::net::Acceptor acceptor(rig.listen_fd);
  rig.readable(acceptor);
  ASSERT_EQ(rig.accepted.size(), 1u);
  const std::uint64_t closes_before = counted(Counter::closes);
  const int fd = rig.accepted.back();
  rig.accepted.pop_back();
  cb::net::close_connection(fd);
  EXPECT_EQ(counted(Counter::closes) - closes_before, 1u);
  char byte = 0;
  EXPECT_EQ(::read(rig.client_fds[0], &byte, 1), 0) << "the client sees the server's close";
}

TEST(AcceptBlocking, ReturnsCountedConnectionsThenMinusOneOnceTheListenerIsShutDown) {
  Rig rig(2);
  ASSERT_EQ(fcntl(rig.listen_fd, F_SETFL, 0), 0);  // blocking, as the blocking models' listener
  const std::uint64_t accepts_before = counted(Counter::accepts);
  for (int i = 0; i < 2; ++i) {
    int fd = cb::net::accept_blocking(rig.listen_fd);
    ASSERT_GE(fd, 0);
    rig.accepted.push_back(fd);
  }
  EXPECT_EQ(counted(Counter::accepts) - accepts_before, 2u);
  ::shutdown(rig.listen_fd, SHUT_RDWR);  // how the blocking models wake their acceptors
  EXPECT_EQ(cb::net::accept_blocking(rig.listen_fd), -1);
}

}  // namespace
