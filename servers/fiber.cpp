// Model: fiber (stackful fibers on an event loop: "writing forward while still evented and using
// no threads", the design of Ruby's fiber servers; the EventMachine interview's other half).
//
// Each scheduler thread runs an epoll loop on its own SO_REUSEPORT listener. Every accepted
// connection gets one stackful fiber (Boost.Context's boost::context::fiber, fcontext
// implementation, on an mmap'ed stack of --stack-kb with a guard page: protected_fixedsize_stack).
// The fiber's code reads like thread-per-connection: read, hand the bytes to the shared pump
// (backends/http/pump.h: parse and answer), write its output, again; a read or write that would
// block suspends the fiber and returns to the loop, which resumes it when epoll reports its fd.
// Each fd is registered once, level-triggered for reading (no re-arming system call per
// request); only a full socket switches it to EPOLLOUT until the output drains (epoll_ctl twice,
// counted as rearms). A fiber woken while it waits for the other direction simply tries again.
//
// Memory per connection: the Conn object (pump and codec) plus the fiber's stack, reserved in
// full (VmSize grows by --stack-kb + one guard page per connection) but resident only as far as
// it was touched (RSS: a few pages, whatever the size). The read buffer is per thread, not per
// fiber: a fiber never suspends inside a session step, so the thread's scratch buffer is free
// whenever a fiber waits.
//
// --threads N: N scheduler threads, each with its own listener and fibers (no migration).
// --stack-kb: fiber stack size (default 64; 16 is the floor main accepts).
// /sleep: blocks the scheduler thread, so it stalls every fiber of that thread (a fiber
// scheduler cannot preempt). /spin: likewise for its CPU time.
// Idle timeout: a sweep four times a second cancels fibers without a completed request for
// --idle-timeout-ms (the fiber's wait returns false, it returns, the loop frees it).
// EMFILE: the listener leaves the epoll set until the next sweep (net::Acceptor, which also
// counts accepts; net::close_connection counts closes).
// Stop: an eventfd per scheduler; the loop cancels every fiber, lets each return, and exits.
// Sanitizers: the same fcontext binary, with every switch annotated for ASan and TSan
// (backends/fiber/sanitizer_switch.h).
// Counters: dispatches (fiber resumes for I/O), poll_rounds, accepts, closes, empty_reads,
// rearms (interest switched for a full socket).
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/context/fiber.hpp>
#include <boost/context/protected_fixedsize_stack.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <memory>
#include <vector>

#include "backends/fiber/sanitizer_switch.h"
#include "backends/http/pump.h"
#include "backends/net/accept.h"
#include "backends/net/idle_list.h"
#include "backends/net/socket.h"
#include "backends/stats/counters.h"
#include "backends/server/model.h"
#include "backends/server/threads.h"

namespace {

using namespace cb;
namespace ctx = boost::context;
using stats::Counter;

constexpr int kMaxEvents = 256;           // per epoll_wait; the rest come back in the next round

struct Conn : net::IdleNode {
  explicit Conn(int fd_) : fd(fd_) {}
  int fd;
  http::Pump pump;
  ctx::fiber fiber;        // the suspended fiber (held by the loop while the fiber waits)
  ctx::fiber loop;         // the loop's continuation (held by the fiber while it runs)
  fiber::SwitchSide side;  // the fiber's stack, for the sanitizers
  bool cancelled = false;  // set by the loop (idle timeout, stop): the next wait returns false
  bool done = false;       // the fiber function returned: free after the switch back
};

// Records the stack it hands out, so the sanitizer annotations know the fiber's stack.
struct RecordingStack {
  ctx::protected_fixedsize_stack inner;
  fiber::SwitchSide* side;
  ctx::stack_context allocate() {
    ctx::stack_context sc = inner.allocate();
    side->stack_bottom = static_cast<char*>(sc.sp) - sc.size;
    side->stack_bytes = sc.size;
    return sc;
  }
  void deallocate(ctx::stack_context& sc) noexcept { inner.deallocate(sc); }
};

constexpr server::ModelOption kStackKb{"--stack-kb", server::ArgKind::integer, "64", "", 16, 64 * 1024,
                                       "stack size of each connection's fiber in KiB (default 64)"};
constexpr server::ModelOption kOptions[] = {kStackKb};

class Scheduler {
 public:
  Scheduler(const server::Options& opt, int listen_fd)
      : listen_fd_(listen_fd), stack_bytes_(static_cast<std::size_t>(opt.int_value(kStackKb)) * 1024),
        epfd_(epoll_create1(EPOLL_CLOEXEC)), stop_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)),
        idle_(std::chrono::milliseconds(opt.idle_timeout_ms)) {}

  ~Scheduler() {
    if (epfd_ >= 0) ::close(epfd_);
    if (stop_fd_ >= 0) ::close(stop_fd_);
  }

  // Thread-safe, non-blocking.
  void stop() {
    std::uint64_t one = 1;
    (void)!::write(stop_fd_, &one, sizeof one);
  }

  void run() {
    (void)fiber::scheduler_side();  // TSan: the scheduler's context is this thread's own
    if (epfd_ < 0 || stop_fd_ < 0 || !net::set_nonblocking(listen_fd_) || !watch_listener() ||
        !add(stop_fd_, EPOLLIN, &stop_fd_)) {
      std::fprintf(stderr, "cbench-server: fiber: unable to start a scheduler\n");
      return;
    }
    epoll_event events[kMaxEvents];
    auto next_sweep = net::Clock::now() + net::kSweepPeriod;
    bool stopping = false;
    while (!stopping) {
      int n = epoll_wait(epfd_, events, kMaxEvents, static_cast<int>(net::kSweepPeriod.count()));
      stats::count(Counter::poll_rounds);
      for (int i = 0; i < n; ++i) {
        void* tag = events[i].data.ptr;
        if (tag == &listen_fd_) on_accept();
        else if (tag == &stop_fd_) stopping = true;
        else {
          stats::count(Counter::dispatches);
          resume(static_cast<Conn*>(tag));
        }
      }
      auto now = net::Clock::now();
      if (now >= next_sweep) {
        on_sweep(now);
        next_sweep = now + net::kSweepPeriod;
      }
    }
    while (net::IdleNode* n = idle_.expired(net::Clock::time_point::max())) cancel(static_cast<Conn*>(n));
  }

 private:
  bool add(int fd, std::uint32_t events, void* tag) {
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = tag;
    return epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) == 0;
  }
  bool watch_listener() { return add(listen_fd_, EPOLLIN, &listen_fd_); }

  // The acceptor takes a bounded batch; out of descriptors, the listener leaves the epoll set until
  // the next sweep.
  void on_accept() {
    acceptor_.on_readable([this](int fd) { start(new Conn(fd)); },
                          [this] { (void)epoll_ctl(epfd_, EPOLL_CTL_DEL, listen_fd_, nullptr); });
  }

  // Creates the connection's fiber and runs it to its first wait.
  void start(Conn* c) {
    idle_.touch(*c, net::Clock::now());
    if (!add(c->fd, EPOLLIN, c)) {
      finish(c);
      return;
    }
    fiber::on_create(c->side);
    c->fiber = ctx::fiber(std::allocator_arg, RecordingStack{ctx::protected_fixedsize_stack(stack_bytes_), &c->side},
                          [this, c](ctx::fiber&& loop) {
                            fiber::after_switch(nullptr, &fiber::scheduler_side());
                            c->loop = std::move(loop);
                            serve(*c);
                            c->done = true;
                            fiber::before_switch(fiber::scheduler_side(), nullptr, /*leaving_for_good=*/true);
                            return std::move(c->loop);
                          });
    resume(c);
  }

  // The connection's whole life, written forward as a thread-per-connection server would:
  // read, hand the bytes to the pump, write what it answers, again. read_some and write_all
  // suspend the fiber instead of blocking the thread.
  void serve(Conn& c) {
    bool maybe_more = false;  // the last read filled the buffer: more may be waiting
    for (;;) {
      ssize_t n = read_some(c, maybe_more);
      if (n <= 0) return;  // EOF, error or cancelled
      maybe_more = static_cast<std::size_t>(n) == sizeof scratch_.read_buf;
      c.pump.feed({scratch_.read_buf, static_cast<std::size_t>(n)}, scratch_.out);
      if (!write_all(c)) return;
      c.pump.lend_back(scratch_.out);
      if (c.pump.take_progress()) idle_.touch(c, net::Clock::now());
      if (c.pump.state() == http::pump_state::close) return;
    }
  }

  // Reads into the thread's buffer, suspending until readable. A short last read means the socket
  // was drained, so it waits before reading (no read that would only return EAGAIN). Returns the
  // bytes read, 0 at EOF, -1 on error or cancellation.
  ssize_t read_some(Conn& c, bool maybe_more) {
    if (!maybe_more && !wait(c)) return -1;
    for (;;) {
      ssize_t n = ::read(c.fd, scratch_.read_buf, sizeof scratch_.read_buf);
      if (n >= 0) return n;
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
      stats::count(Counter::empty_reads);
      if (!wait(c)) return -1;
    }
  }

  // Writes every byte the pump has staged (the pump may stage more as it drains: input held back
  // by the output high-water mark), suspending on a full socket until writable. False if the
  // peer is gone or the connection was cancelled.
  bool write_all(Conn& c) {
    while (c.pump.state() == http::pump_state::write) {
      std::string_view out = c.pump.output();
      ssize_t n = ::send(c.fd, out.data(), out.size(), MSG_NOSIGNAL);
      if (n > 0) {
        c.pump.consumed(static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) return false;
      if (!interest(c, EPOLLOUT)) return false;
      bool ok = wait(c);
      if (!interest(c, EPOLLIN) || !ok) return false;
    }
    return true;
  }

  bool interest(Conn& c, std::uint32_t events) {
    stats::count(Counter::rearms);
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = &c;
    return epoll_ctl(epfd_, EPOLL_CTL_MOD, c.fd, &ev) == 0;
  }

  // Fiber side: back to the loop until resumed. False if the connection was cancelled.
  bool wait(Conn& c) {
    if (c.cancelled) return false;
    void* fake_stack = nullptr;
    fiber::before_switch(fiber::scheduler_side(), &fake_stack);
    c.loop = std::move(c.loop).resume();
    fiber::after_switch(fake_stack, &fiber::scheduler_side());
    return !c.cancelled;
  }

  // Loop side: run the fiber until it waits or returns.
  void resume(Conn* c) {
    void* fake_stack = nullptr;
    fiber::before_switch(c->side, &fake_stack);
    c->fiber = std::move(c->fiber).resume();
    fiber::after_switch(fake_stack, nullptr);
    if (c->done) finish(c);
  }

  void cancel(Conn* c) {
    c->cancelled = true;
    resume(c);  // the fiber's wait returns false; it returns; resume frees it
  }

  void finish(Conn* c) {
    fiber::on_destroy(c->side);
    idle_.unlink(*c);
    net::close_connection(c->fd);  // counted; also leaves the epoll set
    delete c;
  }

  void on_sweep(net::Clock::time_point now) {
    while (net::IdleNode* n = idle_.expired(now)) cancel(static_cast<Conn*>(n));
    acceptor_.on_sweep([this] { return watch_listener(); });
  }

  int listen_fd_;
  std::size_t stack_bytes_;
  int epfd_;
  int stop_fd_;
  net::IdleList idle_;      // every live fiber's connection, oldest deadline first
  http::PumpScratch scratch_;  // shared by this thread's fibers (read_buf never held across a wait;
                               // out is lent to a pump only until it drains)
  net::Acceptor acceptor_{listen_fd_};
};

int run(const server::Options& opt, server::Control& control) {
  auto schedulers = std::make_shared<std::vector<std::unique_ptr<Scheduler>>>();
  for (int fd : control.listeners()) schedulers->push_back(std::make_unique<Scheduler>(opt, fd));
  auto stop_all = [schedulers] {
    for (auto& s : *schedulers) s->stop();
  };
  control.on_stop(stop_all);
  return server::run_on_threads("fiber", static_cast<int>(schedulers->size()),
                                [&](int i) { (*schedulers)[static_cast<std::size_t>(i)]->run(); }, stop_all);
}

}  // namespace

CBENCH_REGISTER_MODEL(fiber, "fiber",
                      "one stackful fiber per connection (Boost.Context, --stack-kb), written forward, resumed by an "
                      "edge-triggered epoll loop; --threads N schedulers on SO_REUSEPORT listeners",
                      server::ListenerLayout::per_thread, &run, {}, nullptr, kOptions)
