// The libev scaffolding of nio4r's NIO::Selector, shared by the two nio4r models
// (servers/selector.cpp: handlers inline; servers/selector_pool.cpp: worker threads), so that each
// model file holds only its concurrency model and the two rows differ in nothing else.
//
// A helper of this one family of models, hence its folder: the pull loop (backends/loop) knows no
// sessions and no acceptor; this does.
//
// What it owns: one libev loop (EVFLAG_NOSIGMASK: the server's signal handling is main.cpp's),
// the listener's level-triggered watcher, whose readiness hands the listener to net::Acceptor (a
// bounded batch per readiness, as in every model that polls its listener, so that rows differ in
// their concurrency model and not in how they accept; the Ruby examples call server.accept once
// per event, which level-triggering turns into the same batch spread over loop rounds), the idle
// sweep timer (every net::kSweepPeriod), the poll-round counter (an ev_check: one per loop
// iteration), and the ev_async that stop() sends from any thread.
// What it leaves to the model: what a connection is, its watcher's callback, what the sweep
// closes, and what a stop does beyond breaking the loop.
//
// Model contract (a class passed as the template argument, called on the loop thread only):
//   void on_accepted(int fd);                    a new connection, nonblocking and TCP_NODELAY;
//                                                the model owns fd from here on
//   void on_sweep(net::Clock::time_point now);   the idle sweep (the listener is resumed after it)
//   void on_stop_requested();                    stop() arrived; the loop is broken right after
// EMFILE/ENFILE: the acceptor stops the listener's watcher until the next sweep, so accept neither
// spins nor dies. Counters: accepts (the acceptor's), poll_rounds, rearms (monitor()).
#pragma once

#include <ev.h>

#include <chrono>

#include "backends/net/accept.h"
#include "backends/net/idle_list.h"
#include "backends/net/socket.h"
#include "backends/stats/counters.h"

namespace cb::selector {

template <class Model>
class EvSelector {
 public:
  EvSelector(Model& model, int listen_fd)
      : model_(model), listen_fd_(listen_fd), acceptor_(listen_fd), loop_(ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK)) {}
  ~EvSelector() {
    if (loop_ != nullptr) ev_loop_destroy(loop_);
  }
  EvSelector(const EvSelector&) = delete;
  EvSelector& operator=(const EvSelector&) = delete;

  // Registers the listener, the sweep, the round counter and the stop async; false if the loop
  // could not be created or the listener made nonblocking (the caller prints the failure).
  bool start() {
    if (loop_ == nullptr || !net::set_nonblocking(listen_fd_)) return false;
    ev_set_userdata(loop_, this);
    ev_io_init(&accept_w_, &EvSelector::on_accept_cb, listen_fd_, EV_READ);
    ev_io_start(loop_, &accept_w_);
    ev_timer_init(&sweep_w_, &EvSelector::on_sweep_cb, kSweepEverySeconds, kSweepEverySeconds);
    ev_timer_start(loop_, &sweep_w_);
    ev_check_init(&round_w_, [](struct ev_loop*, ev_check*, int) { stats::count(stats::Counter::poll_rounds); });
    ev_check_start(loop_, &round_w_);
    ev_async_init(&stop_w_, &EvSelector::on_stop_cb);
    ev_async_start(loop_, &stop_w_);
    return true;
  }

  struct ev_loop* loop() const { return loop_; }

  // Thread-safe; the loop calls Model::on_stop_requested and breaks at its next iteration.
  void stop() { ev_async_send(loop_, &stop_w_); }

  // The model behind a loop, for its own watchers' callbacks.
  static Model& model_of(struct ev_loop* l) { return static_cast<EvSelector*>(ev_userdata(l))->model_; }

  // nio4r's Connection#monitor: close the old monitor and register a new one (ev_io_stop + set +
  // start on the connection's one ev_io: no allocation), counted as a rearm.
  void monitor(ev_io& w, int fd, int events) {
    stats::count(stats::Counter::rearms);
    ev_io_stop(loop_, &w);
    ev_io_set(&w, fd, events);
    ev_io_start(loop_, &w);
  }

 private:
  static constexpr double kSweepEverySeconds = std::chrono::duration<double>(net::kSweepPeriod).count();  // libev's unit

  static EvSelector& of(struct ev_loop* l) { return *static_cast<EvSelector*>(ev_userdata(l)); }
  static void on_accept_cb(struct ev_loop* l, ev_io*, int) { of(l).on_accept(); }
  static void on_stop_cb(struct ev_loop* l, ev_async*, int) {
    of(l).model_.on_stop_requested();
    ev_break(l, EVBREAK_ALL);
  }
  static void on_sweep_cb(struct ev_loop* l, ev_timer*, int) {
    EvSelector& s = of(l);
    s.model_.on_sweep(net::Clock::now());
    s.acceptor_.on_sweep([&s] {
      ev_io_start(s.loop_, &s.accept_w_);
      return true;
    });
  }

  void on_accept() {
    acceptor_.on_readable([this](int fd) { model_.on_accepted(fd); }, [this] { ev_io_stop(loop_, &accept_w_); });
  }

  Model& model_;
  int listen_fd_;
  net::Acceptor acceptor_;
  struct ev_loop* loop_;
  ev_io accept_w_{};
  ev_timer sweep_w_{};
  ev_check round_w_{};
  ev_async stop_w_{};
};

}  // namespace cb::selector
