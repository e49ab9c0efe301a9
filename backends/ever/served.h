// What Ever's two models share around the pull loop (servers/pull_loop.cpp handles a ready
// connection inline, servers/worker_pool.cpp on a worker thread), so that each model file holds
// only its concurrency model and the two rows differ in nothing else: the --backend option, the
// listener (through net::Acceptor), the idle sweep, the idle list and a connection's close.
// A helper of this family of models only, hence its folder: the pull loop (backends/loop) knows
// no sessions and no acceptor.
//
// Keys: the loop's own keys are below 8 (kAcceptKey, kSweepKey); a connection's key is its address
// (Conn is 8-byte aligned, so worker-pool can add a command in the low 3 bits).
// Not thread-safe: everything here runs on the loop thread.
#pragma once
#include <chrono>
#include <cstdio>
#include <memory>
#include <string_view>

#include "backends/loop/pull_loop.h"
#include "backends/net/accept.h"
#include "backends/net/idle_list.h"
#include "backends/net/nb_session.h"
#include "backends/net/socket.h"
#include "backends/server/model.h"

namespace cb::ever {

inline constexpr loop::Key kAcceptKey = 1;
inline constexpr loop::Key kSweepKey = 2;

// --backend: which pull-loop implementation runs (backends/loop).
inline constexpr server::ModelOption kBackend{"--backend", server::ArgKind::word, "libev", "libev|epoll", 0, 0,
                                              "the pull loop's implementation: libev (default) or raw epoll"};

// The pull loop --backend names (libev when not given).
inline std::shared_ptr<loop::PullLoop> make_loop(const server::Options& opt) {
  return std::shared_ptr<loop::PullLoop>(
      loop::make_pull_loop(loop::parse_backend(opt.value(kBackend)).value_or(loop::Backend::libev)));
}

struct Conn : net::IdleNode {
  explicit Conn(int fd) : session(fd) {}
  net::NbSession session;
  bool writing = false;    // the next step is on_writable (true) or on_readable
  bool busy = false;       // worker-pool: in a queue or a worker, so not watched (pull-loop: never)
  bool timed_out = false;  // the idle deadline passed while the connection could not be closed (its
                           // readiness already in the current batch, or busy): closed when that step
                           // comes back unless it completed a request
};

inline loop::Key key_of(Conn* c) { return reinterpret_cast<loop::Key>(c); }

class Served {
 public:
  // listen_fd: not owned. loop: shared with the model's stop function.
  Served(int listen_fd, std::shared_ptr<loop::PullLoop> loop, std::chrono::milliseconds idle_timeout)
      : loop_(std::move(loop)), acceptor_(listen_fd), idle_(idle_timeout) {}

  // Makes the listener non-blocking and watches it and the sweep timer. Returns false, after
  // printing the failure with the model's name, if that failed.
  bool start(std::string_view model) {
    if (net::set_nonblocking(acceptor_.fd()) && watch_listener() &&
        loop_->watch_timer(kSweepKey, net::kSweepPeriod, net::kSweepPeriod) == loop::WatchStatus::ok) {
      return true;
    }
    std::fprintf(stderr, "cbench-server: %.*s: unable to watch the listener\n", int(model.size()), model.data());
    return false;
  }

  // kAcceptKey came: the acceptor takes a bounded batch (out of descriptors, the listener is
  // unwatched until the next sweep). Each new connection is in the idle list and passed to
  // on_new(Conn*), which watches it or closes it.
  template <class OnNew>
  void on_accept(OnNew&& on_new) {
    acceptor_.on_readable(
        [&](int fd) {
          auto* c = new Conn(fd);
          idle_.touch(*c, net::Clock::now());
          on_new(c);
        },
        [this] { (void)loop_->unwatch(kAcceptKey); });
  }

  // kSweepKey came: closes the connections idle too long. One that is busy, or whose one-shot watch
  // has fired (its key is in the current batch, handed out after this sweep), is not deleted here:
  // that would leave a dangling key (or one of a connection accepted later in the batch at the same
  // address: ASan and TSan caught both, conformance's 1 ms idle-timeout churn case). It is marked
  // timed_out and decided by keep_after_step. Then a listener paused for lack of descriptors is
  // watched again.
  void on_sweep() {
    auto now = net::Clock::now();
    while (net::IdleNode* n = idle_.expired(now)) {
      auto* c = static_cast<Conn*>(n);
      if (!c->busy && loop_->unwatch(key_of(c))) {
        close(c);
        continue;
      }
      c->timed_out = true;
      idle_.touch(*c, now);
    }
    acceptor_.on_sweep([this] { return watch_listener(); });
  }

  // After one step of c's session: renews its idle deadline if requests completed. Returns false if
  // c timed out meanwhile without completing one (the caller closes it).
  bool keep_after_step(Conn* c) {
    if (c->session.take_progress()) {
      c->timed_out = false;
      idle_.touch(*c, net::Clock::now());
      return true;
    }
    return !c->timed_out;
  }

  // Unwatches (false when its one-shot watch already fired), closes (counted) and frees c.
  void close(Conn* c) {
    (void)loop_->unwatch(key_of(c));
    idle_.unlink(*c);
    net::close_connection(c->session.fd());
    delete c;
  }

  // Closes every connection still open (after the loop has stopped).
  void close_all() {
    while (net::IdleNode* n = idle_.expired(net::Clock::time_point::max())) close(static_cast<Conn*>(n));
  }

 private:
  bool watch_listener() {
    return loop_->watch_io(kAcceptKey, acceptor_.fd(), loop::Interest::readable, /*oneshot=*/false) ==
           loop::WatchStatus::ok;
  }

  std::shared_ptr<loop::PullLoop> loop_;
  net::Acceptor acceptor_;
  net::IdleList idle_;  // every open connection, oldest deadline first
};

}  // namespace cb::ever
