// Loop-turn microbenchmarks: the cost of one readiness round with one ready descriptor among N
// idle ones (idle:N), on each event loop the models are built on.
//
// Descriptors are AF_UNIX stream socket pairs. The ready descriptor is one end of a pair; the idle
// ones are both ends of other pairs (two connected sockets with nothing to read, each as idle as
// a server's idle connection, for one descriptor each). The loop watches every one of them for
// readability, as a server watches its connections. One iteration:
// write one byte to the ready pair's far end (the "request"), run one round of the loop, which
// reports the ready descriptor, and read the byte in its handler. Every variant pays that write
// and read: BM_Loop_WriteRead is them alone, the floor to subtract.
//
//   BM_Loop_Epoll/idle:N             epoll_wait, level-triggered, every descriptor registered once
//                                    (the epoll-reactor model)
//   BM_Loop_PullLoop/libev|epoll/idle:N  one next_event() round of the pull loop, then re-arming
//                                    the one-shot read watch, as pull-loop and worker-pool do for
//                                    every request (epoll backend: an epoll_ctl MOD per round)
//   BM_Loop_Libuv/idle:N             uv_run(UV_RUN_ONCE) with a uv_poll_t per descriptor (uv_poll
//                                    rather than uv_read_start, so that the read is this file's
//                                    one-byte read in every variant and the loop does not own the
//                                    descriptors); its round also runs libuv's timers and
//                                    prepare/check phases, as it does in libuv-server
//
// N idle descriptors take N/2 pairs, so N = 10000 fits under a 20000-descriptor hard limit;
// the soft RLIMIT_NOFILE is raised to fit, or the benchmark is skipped saying why. The pairs are
// made once and reused by every benchmark of the process.
// Real time: each round makes system calls.
#include <benchmark/benchmark.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "backends/loop/pull_loop.h"
#include "bench/bench_support.h"

namespace {

using cb::bench::SocketPair;

// Descriptors beyond the socket pairs: stdio, epoll and libev/libuv internals, the library's own.
constexpr rlim_t kSpareDescriptors = 256;

// Socket pairs shared by every benchmark of the process: [0] is the ready one, [1..] idle.
// Made on first use and kept, since making 5000 pairs for each run would dominate start-up.
std::vector<SocketPair>& pairs() {
  static std::vector<SocketPair> all;
  return all;
}

// Ensures pairs() holds the ready pair and enough idle pairs for `idle` descriptors. Returns ""
// or why not.
std::string ensure_pairs(std::size_t idle) {
  auto& all = pairs();
  const std::size_t want = 1 + (idle + 1) / 2;
  if (all.size() >= want) return "";
  if (std::string err = cb::bench::raise_nofile(2 * want + kSpareDescriptors); !err.empty()) return err;
  return cb::bench::open_socket_pairs(want - all.size(), all);
}

// Watched descriptor i: 0 is the ready one (the pair's end that is read), 1..idle the idle ones.
int watched_fd(std::size_t i) {
  if (i == 0) return pairs()[0].fd[0];
  return pairs()[1 + (i - 1) / 2].fd[(i - 1) % 2];
}

// The "request": one byte into the ready pair's far end.
bool send_byte() {
  const char byte = 'x';
  ssize_t n;
  while ((n = ::write(pairs()[0].fd[1], &byte, 1)) < 0 && errno == EINTR) {
  }
  return n == 1;
}

// The handler's read of that byte from the watched end. Returns false if nothing was there.
bool receive_byte(int fd) {
  char byte;
  ssize_t n;
  while ((n = ::read(fd, &byte, 1)) < 0 && errno == EINTR) {
  }
  return n == 1;
}

// Drains anything a failed earlier run left in the ready pair, so that the first round is exact.
void drain_ready() {
  char buf[64];
  while (::read(pairs()[0].fd[0], buf, sizeof buf) > 0) {
  }
}

void finish(benchmark::State& state, std::size_t idle) {
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["watched_fds"] = static_cast<double>(idle + 1);
}

// ---- write + read only ------------------------------------------------------------------------
void BM_Loop_WriteRead(benchmark::State& state) {
  if (std::string err = ensure_pairs(0); !err.empty()) {
    state.SkipWithError(err.c_str());
    return;
  }
  drain_ready();
  const int fd = pairs()[0].fd[0];
  for (auto _ : state) {
    if (!send_byte() || !receive_byte(fd)) {
      state.SkipWithError("write or read of the ready socket pair failed");
      break;
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_Loop_WriteRead)->UseRealTime();

// Idle counts: a few connections, the published table's 1000, and the 10000 of the idle and
// connection sweeps.
void idle_args(benchmark::internal::Benchmark* b) {
  b->ArgName("idle")->Arg(10)->Arg(1000)->Arg(10000)->UseRealTime();
}

// ---- raw epoll, level-triggered -----------------------------------------------------------------
void BM_Loop_Epoll(benchmark::State& state) {
  const auto idle = static_cast<std::size_t>(state.range(0));
  if (std::string err = ensure_pairs(idle); !err.empty()) {
    state.SkipWithError(err.c_str());
    return;
  }
  drain_ready();
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) {
    state.SkipWithError((std::string("epoll_create1: ") + std::strerror(errno)).c_str());
    return;
  }
  for (std::size_t i = 0; i <= idle; ++i) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, watched_fd(i), &ev) != 0) {
      state.SkipWithError((std::string("epoll_ctl(ADD): ") + std::strerror(errno)).c_str());
      ::close(ep);
      return;
    }
  }
  const int fd = pairs()[0].fd[0];
  // Events taken per epoll_wait, as the epoll reactor takes them (kMaxEventsPerWait there).
  epoll_event events[512];
  auto round = [&]() -> bool {
    if (!send_byte()) return false;
    int n;
    while ((n = epoll_wait(ep, events, 512, -1)) < 0 && errno == EINTR) {
    }
    return n == 1 && events[0].data.u64 == 0 && receive_byte(fd);
  };
  bool ok = round();  // warm-up, outside the timing
  for (auto _ : state) {
    if (!ok || !(ok = round())) {
      state.SkipWithError("the round did not report exactly the ready descriptor");
      break;
    }
  }
  ::close(ep);
  finish(state, idle);
}
BENCHMARK(BM_Loop_Epoll)->Apply(idle_args);

// ---- the pull loop ------------------------------------------------------------------------------
void BM_Loop_PullLoop(benchmark::State& state, cb::loop::Backend backend) {
  using cb::loop::Interest;
  using cb::loop::WatchStatus;
  const auto idle = static_cast<std::size_t>(state.range(0));
  if (std::string err = ensure_pairs(idle); !err.empty()) {
    state.SkipWithError(err.c_str());
    return;
  }
  drain_ready();
  std::unique_ptr<cb::loop::PullLoop> loop;
  try {
    loop = cb::loop::make_pull_loop(backend);
  } catch (const std::exception& e) {
    state.SkipWithError((std::string("make_pull_loop: ") + e.what()).c_str());
    return;
  }
  // Keys are the descriptor's index + 1 (any number will do; the models use connection addresses).
  for (std::size_t i = 0; i <= idle; ++i) {
    WatchStatus st = loop->watch_io(i + 1, watched_fd(i), Interest::readable, /*oneshot=*/true);
    if (st != WatchStatus::ok) {
      state.SkipWithError(("watch_io: " + std::string(cb::loop::to_string(st))).c_str());
      return;
    }
  }
  const int fd = pairs()[0].fd[0];
  auto round = [&]() -> bool {
    if (!send_byte()) return false;
    std::optional<cb::loop::Key> key = loop->next_event();  // the batch is used up: one poll round
    if (!key || *key != 1 || !receive_byte(fd)) return false;
    return loop->watch_io(1, fd, Interest::readable, /*oneshot=*/true) == WatchStatus::ok;
  };
  bool ok = round();  // warm-up: libev registers its watchers with the kernel in its first round
  for (auto _ : state) {
    if (!ok || !(ok = round())) {
      state.SkipWithError("the round did not report exactly the ready descriptor");
      break;
    }
  }
  finish(state, idle);
  state.counters["poll_rounds"] = static_cast<double>(loop->poll_rounds());
}
BENCHMARK_CAPTURE(BM_Loop_PullLoop, libev, cb::loop::Backend::libev)->Apply(idle_args);
BENCHMARK_CAPTURE(BM_Loop_PullLoop, epoll, cb::loop::Backend::epoll)->Apply(idle_args);

// ---- libuv --------------------------------------------------------------------------------------
struct UvPoll {
  uv_poll_t handle;
  int fd;
  std::uint64_t* reads;
};

void on_uv_readable(uv_poll_t* h, int status, int events) {
  auto* p = static_cast<UvPoll*>(h->data);
  if (status == 0 && (events & UV_READABLE) && receive_byte(p->fd)) ++*p->reads;
}

void BM_Loop_Libuv(benchmark::State& state) {
  const auto idle = static_cast<std::size_t>(state.range(0));
  if (std::string err = ensure_pairs(idle); !err.empty()) {
    state.SkipWithError(err.c_str());
    return;
  }
  drain_ready();
  uv_loop_t uv;
  if (int err = uv_loop_init(&uv); err != 0) {
    state.SkipWithError((std::string("uv_loop_init: ") + uv_strerror(err)).c_str());
    return;
  }
  std::uint64_t reads = 0;
  auto polls = std::make_unique<UvPoll[]>(idle + 1);
  std::size_t started = 0;
  std::string error;
  for (std::size_t i = 0; i <= idle && error.empty(); ++i) {
    UvPoll& p = polls[i];
    p.fd = watched_fd(i);
    p.reads = &reads;
    p.handle.data = &p;
    if (int err = uv_poll_init(&uv, &p.handle, p.fd); err != 0) {
      error = std::string("uv_poll_init: ") + uv_strerror(err);
      break;
    }
    ++started;
    if (int err = uv_poll_start(&p.handle, UV_READABLE, &on_uv_readable); err != 0)
      error = std::string("uv_poll_start: ") + uv_strerror(err);
  }
  auto round = [&]() -> bool {
    const std::uint64_t before = reads;
    if (!send_byte()) return false;
    uv_run(&uv, UV_RUN_ONCE);
    return reads == before + 1;
  };
  if (!error.empty()) {
    state.SkipWithError(error.c_str());
  } else {
    bool ok = round();  // warm-up: libuv registers its watchers with epoll in its first round
    for (auto _ : state) {
      if (!ok || !(ok = round())) {
        state.SkipWithError("the round did not report exactly the ready descriptor");
        break;
      }
    }
    finish(state, idle);
  }
  for (std::size_t i = 0; i < started; ++i) uv_close(reinterpret_cast<uv_handle_t*>(&polls[i].handle), nullptr);
  uv_run(&uv, UV_RUN_DEFAULT);  // runs the close callbacks; no handle is left afterwards
  uv_loop_close(&uv);
}
BENCHMARK(BM_Loop_Libuv)->Apply(idle_args);

}  // namespace

BENCHMARK_MAIN();
