// Cross-thread wake-up microbenchmarks: the round trip of waking an event loop that is blocked
// waiting for events, from another thread, with each mechanism the models use.
//
// One iteration: the benchmark thread wakes the loop thread with the mechanism under test, the
// loop thread's handler replies through a futex (FutexReply), and the benchmark thread waits
// for that reply. Every variant pays the same reply, so differences between rows are
// differences between mechanisms; BM_Wakeup_Futex (a futex each way) is the floor.
//
//   BM_Wakeup_Futex                   loop thread blocked in a futex wait (C++20 atomic wait)
//   BM_Wakeup_EpollEventfd            epoll_wait on an eventfd; wake = write(eventfd)
//   BM_Wakeup_LibevAsync              ev_run; wake = ev_async_send
//   BM_Wakeup_LibuvAsync              uv_run; wake = uv_async_send
//   BM_Wakeup_AsioPost                io_context::run; wake = post(io_context, handler)
//   BM_Wakeup_PullLoopEmit/libev|epoll  next_event(); wake = PullLoop::emit (the worker pool's
//                                     path for handing a connection back to its loop thread)
//
// With both threads on one CPU (cbench micro pins to the server's CPU), a round trip includes
// two context switches, as a worker handing work to a loop on the same CPU does. The loop may not
// have gone back to sleep when the next wake comes; then that wake finds it running, as happens
// under load. Real time: the cost is mostly sleeping and switching, not this thread's CPU.
#include <benchmark/benchmark.h>
#include <ev.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <uv.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "backends/loop/pull_loop.h"
#include "bench/bench_support.h"

namespace {

using cb::bench::FutexReply;

// Runs the round trips of one benchmark. Rig: start() -> "" or an error, wake(), stop() (joins).
template <class Rig>
void run_round_trips(benchmark::State& state, Rig& rig) {
  if (std::string err = rig.start(); !err.empty()) {
    state.SkipWithError(err.c_str());
    return;
  }
  std::uint32_t expected = rig.reply.value();
  for (auto _ : state) {
    rig.wake();
    rig.reply.wait(++expected);
  }
  rig.stop();
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

// ---- futex ------------------------------------------------------------------------------------
struct FutexRig {
  FutexReply reply;
  std::atomic<std::uint32_t> request{0};
  std::atomic<bool> stopping{false};
  std::thread loop;

  std::string start() {
    loop = std::thread([this] {
      std::uint32_t seen = 0;
      for (;;) {
        request.wait(seen, std::memory_order_acquire);
        seen = request.load(std::memory_order_acquire);
        if (stopping.load(std::memory_order_acquire)) return;
        reply.post();
      }
    });
    return "";
  }
  void wake() {
    request.fetch_add(1, std::memory_order_release);
    request.notify_one();
  }
  void stop() {
    stopping.store(true, std::memory_order_release);
    wake();
    loop.join();
  }
};

void BM_Wakeup_Futex(benchmark::State& state) {
  FutexRig rig;
  run_round_trips(state, rig);
}
BENCHMARK(BM_Wakeup_Futex)->UseRealTime();

// ---- eventfd on epoll ---------------------------------------------------------------------------
struct EpollEventfdRig {
  FutexReply reply;
  int epoll_fd = -1;
  int event_fd = -1;
  std::atomic<bool> stopping{false};
  std::thread loop;

  ~EpollEventfdRig() {
    if (event_fd >= 0) ::close(event_fd);
    if (epoll_fd >= 0) ::close(epoll_fd);
  }
  std::string start() {
    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd < 0) return std::string("epoll_create1: ") + std::strerror(errno);
    event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (event_fd < 0) return std::string("eventfd: ") + std::strerror(errno);
    epoll_event ev{};
    ev.events = EPOLLIN;
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, event_fd, &ev) != 0)
      return std::string("epoll_ctl(ADD eventfd): ") + std::strerror(errno);
    loop = std::thread([this] {
      epoll_event out[8];
      for (;;) {
        int n = epoll_wait(epoll_fd, out, 8, -1);
        if (n <= 0) continue;  // EINTR
        std::uint64_t count;
        while (::read(event_fd, &count, sizeof count) < 0 && errno == EINTR) {
        }
        if (stopping.load(std::memory_order_acquire)) return;
        reply.post();
      }
    });
    return "";
  }
  void wake() {
    const std::uint64_t one = 1;
    while (::write(event_fd, &one, sizeof one) < 0 && errno == EINTR) {
    }
  }
  void stop() {
    stopping.store(true, std::memory_order_release);
    wake();
    loop.join();
  }
};

void BM_Wakeup_EpollEventfd(benchmark::State& state) {
  EpollEventfdRig rig;
  run_round_trips(state, rig);
}
BENCHMARK(BM_Wakeup_EpollEventfd)->UseRealTime();

// ---- libev ev_async -----------------------------------------------------------------------------
struct LibevAsyncRig {
  FutexReply reply;
  struct ev_loop* ev = nullptr;
  ev_async async{};
  std::atomic<bool> stopping{false};
  std::thread loop;

  ~LibevAsyncRig() {
    if (ev) ev_loop_destroy(ev);
  }
  static void on_async(struct ev_loop* l, ev_async* w, int) {
    auto* self = static_cast<LibevAsyncRig*>(w->data);
    if (self->stopping.load(std::memory_order_acquire)) {
      ev_async_stop(l, w);
      ev_break(l, EVBREAK_ALL);
      return;
    }
    self->reply.post();
  }
  std::string start() {
    ev = ev_loop_new(EVFLAG_NOSIGMASK);  // as the pull loop creates its libev loop (epoll on Linux)
    if (!ev) return std::string("ev_loop_new: ") + std::strerror(errno);
    ev_async_init(&async, &on_async);
    async.data = this;
    ev_async_start(ev, &async);
    loop = std::thread([this] { ev_run(ev, 0); });
    return "";
  }
  void wake() { ev_async_send(ev, &async); }
  void stop() {
    stopping.store(true, std::memory_order_release);
    wake();
    loop.join();
  }
};

void BM_Wakeup_LibevAsync(benchmark::State& state) {
  LibevAsyncRig rig;
  run_round_trips(state, rig);
}
BENCHMARK(BM_Wakeup_LibevAsync)->UseRealTime();

// ---- libuv uv_async -----------------------------------------------------------------------------
struct LibuvAsyncRig {
  FutexReply reply;
  uv_loop_t uv{};
  uv_async_t async{};
  bool loop_open = false;
  std::atomic<bool> stopping{false};
  std::thread loop;

  ~LibuvAsyncRig() {
    if (loop_open) uv_loop_close(&uv);
  }
  static void on_async(uv_async_t* h) {
    auto* self = static_cast<LibuvAsyncRig*>(h->data);
    if (self->stopping.load(std::memory_order_acquire)) {
      uv_close(reinterpret_cast<uv_handle_t*>(h), nullptr);  // no handle left: uv_run returns
      return;
    }
    self->reply.post();
  }
  std::string start() {
    if (int err = uv_loop_init(&uv); err != 0) return std::string("uv_loop_init: ") + uv_strerror(err);
    loop_open = true;
    if (int err = uv_async_init(&uv, &async, &on_async); err != 0)
      return std::string("uv_async_init: ") + uv_strerror(err);
    async.data = this;
    loop = std::thread([this] { uv_run(&uv, UV_RUN_DEFAULT); });
    return "";
  }
  void wake() { uv_async_send(&async); }
  void stop() {
    stopping.store(true, std::memory_order_release);
    wake();
    loop.join();
  }
};

void BM_Wakeup_LibuvAsync(benchmark::State& state) {
  LibuvAsyncRig rig;
  run_round_trips(state, rig);
}
BENCHMARK(BM_Wakeup_LibuvAsync)->UseRealTime();

// ---- Asio post ----------------------------------------------------------------------------------
struct AsioPostRig {
  FutexReply reply;
  boost::asio::io_context io{1};  // concurrency hint 1: one thread runs it, as asio-server --threads 1
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard;
  std::thread loop;

  std::string start() {
    guard.emplace(io.get_executor());  // keeps run() blocked while no handler is queued
    loop = std::thread([this] { io.run(); });
    return "";
  }
  void wake() {
    boost::asio::post(io, [this] { reply.post(); });
  }
  void stop() {
    guard.reset();
    io.stop();
    loop.join();
  }
};

void BM_Wakeup_AsioPost(benchmark::State& state) {
  AsioPostRig rig;
  run_round_trips(state, rig);
}
BENCHMARK(BM_Wakeup_AsioPost)->UseRealTime();

// ---- the pull loop's emit -----------------------------------------------------------------------
struct PullLoopEmitRig {
  explicit PullLoopEmitRig(cb::loop::Backend b) : backend(b) {}
  cb::loop::Backend backend;
  FutexReply reply;
  std::unique_ptr<cb::loop::PullLoop> pull;
  std::thread loop;

  std::string start() {
    try {
      pull = cb::loop::make_pull_loop(backend);
    } catch (const std::exception& e) {
      return std::string("make_pull_loop: ") + e.what();
    }
    // next_event() returns nullopt only once stopped (no signal() is sent).
    loop = std::thread([this] {
      while (pull->next_event()) reply.post();
    });
    return "";
  }
  void wake() { pull->emit(1); }
  void stop() {
    pull->stop();
    loop.join();
  }
};

void BM_Wakeup_PullLoopEmit(benchmark::State& state, cb::loop::Backend backend) {
  PullLoopEmitRig rig(backend);
  run_round_trips(state, rig);
}
BENCHMARK_CAPTURE(BM_Wakeup_PullLoopEmit, libev, cb::loop::Backend::libev)->UseRealTime();
BENCHMARK_CAPTURE(BM_Wakeup_PullLoopEmit, epoll, cb::loop::Backend::epoll)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
