// Model: selector (nio4r's single-thread server: "nio4r single thread" in the published table;
// digital-fabric/ever examples/http_server_nio4r_single_thread.rb).
//
// One thread runs a libev loop, as NIO::Selector does underneath. Every watcher is
// level-triggered (a plain ev_io, nio4r's monitor). Handlers run inline, inside the loop's
// callbacks, as the example's `selector.select do |monitor| ... end` block runs them: the
// listener's callback accepts ONE connection per readiness (the example calls server.accept once
// per event; level-triggering brings it back for the rest), a connection's callback reads, parses,
// answers and writes. After every step the connection's monitor is closed and a new one
// registered (`conn.monitor(:r)` / `(:w)`): here ev_io_stop + ev_io_set + ev_io_start on the
// connection's one ev_io, counted as `rearms`. What this model adds over epoll-reactor (the
// EventMachine row, which registers each connection once) is exactly that per-request
// re-registration and libev's fd-change bookkeeping behind it. Unlike Ruby it allocates no new
// monitor object per request (the ev_io lives in the connection), so zero heap allocations per
// request.
//
// --threads: ignored (always one thread; see selector-pool for the worker variant).
// /sleep and /spin: run on the only thread, so they stall every connection for their duration.
// Idle timeout: connections without a completed request for --idle-timeout-ms are closed by a
// sweep four times a second.
// EMFILE: the listener's watcher is stopped until the next sweep, so accept neither spins nor dies.
// Stop: Control::on_stop sends an ev_async; the loop breaks, closes every connection and returns.
// Counters: dispatches (connection callbacks), rearms, poll_rounds (loop iterations), accepts,
// closes; empty_reads come from the session.
#include <ev.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <memory>

#include "backends/net/idle_list.h"
#include "backends/net/nb_session.h"
#include "backends/net/socket.h"
#include "backends/server/counters.h"
#include "backends/server/model.h"

namespace {

using namespace cb;
using server::Counter;

constexpr double kSweepEverySeconds = 0.25;  // idle sweeps; timeouts are seconds

struct Conn : net::IdleNode {
  explicit Conn(int fd) : session(fd) {}
  ev_io watcher{};  // the connection's monitor; stopped and started again after every step
  net::NbSession session;
};

class Server {
 public:
  Server(const server::Options& opt, int listen_fd)
      : listen_fd_(listen_fd), loop_(ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK)),
        idle_(std::chrono::milliseconds(opt.idle_timeout_ms)) {}

  ~Server() {
    if (loop_ != nullptr) ev_loop_destroy(loop_);
  }

  int run(server::Control& control, const std::shared_ptr<Server>& self) {
    if (loop_ == nullptr || !net::set_nonblocking(listen_fd_)) {
      std::fprintf(stderr, "cbench-server: selector: unable to start the libev loop\n");
      return 1;
    }
    ev_set_userdata(loop_, this);
    ev_io_init(&accept_w_, &Server::on_accept_cb, listen_fd_, EV_READ);
    ev_io_start(loop_, &accept_w_);
    ev_timer_init(&sweep_w_, &Server::on_sweep_cb, kSweepEverySeconds, kSweepEverySeconds);
    ev_timer_start(loop_, &sweep_w_);
    ev_check_init(&round_w_, [](struct ev_loop*, ev_check*, int) { server::count(Counter::poll_rounds); });
    ev_check_start(loop_, &round_w_);
    ev_async_init(&stop_w_, [](struct ev_loop* l, ev_async*, int) { ev_break(l, EVBREAK_ALL); });
    ev_async_start(loop_, &stop_w_);
    // The stop function keeps the server (and its loop) alive while it may still be sending.
    control.on_stop([self] { ev_async_send(self->loop_, &self->stop_w_); });

    ev_run(loop_, 0);

    while (net::IdleNode* n = idle_.expired(net::Clock::time_point::max())) close(static_cast<Conn*>(n));
    return 0;
  }

 private:
  static Server& of(struct ev_loop* l) { return *static_cast<Server*>(ev_userdata(l)); }

  static void on_accept_cb(struct ev_loop* l, ev_io*, int) { of(l).on_accept(); }
  static void on_sweep_cb(struct ev_loop* l, ev_timer*, int) { of(l).on_sweep(); }
  static void on_conn_cb(struct ev_loop* l, ev_io* w, int revents) {
    of(l).on_connection(static_cast<Conn*>(w->data), revents);
  }

  void on_accept() {
    int fd = net::accept_connection(listen_fd_, /*nonblocking=*/true);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        ev_io_stop(loop_, &accept_w_);  // retried at the next sweep instead of spinning
        accept_paused_ = true;
      }
      return;
    }
    server::count(Counter::accepts);
    net::set_nodelay(fd);
    auto* c = new Conn(fd);
    c->watcher.data = c;
    ev_io_init(&c->watcher, &Server::on_conn_cb, fd, EV_READ);
    ev_io_start(loop_, &c->watcher);
    idle_.touch(*c, net::Clock::now());
  }

  // handle_connection: one step of the session, then `conn.monitor(event)` or `conn.close`.
  void on_connection(Conn* c, int revents) {
    server::count(Counter::dispatches);
    net::want w = (revents & EV_WRITE) ? c->session.on_writable(scratch_) : c->session.on_readable(scratch_);
    if (w == net::want::close) return close(c);
    if (c->session.take_progress()) idle_.touch(*c, net::Clock::now());
    monitor(c, w == net::want::write ? EV_WRITE : EV_READ);
  }

  // nio4r's Connection#monitor: close the old monitor, register a new one.
  void monitor(Conn* c, int events) {
    server::count(Counter::rearms);
    ev_io_stop(loop_, &c->watcher);
    ev_io_set(&c->watcher, c->session.fd(), events);
    ev_io_start(loop_, &c->watcher);
  }

  void on_sweep() {
    auto now = net::Clock::now();
    while (net::IdleNode* n = idle_.expired(now)) close(static_cast<Conn*>(n));
    if (accept_paused_) {
      ev_io_start(loop_, &accept_w_);
      accept_paused_ = false;
    }
  }

  void close(Conn* c) {
    server::count(Counter::closes);
    ev_io_stop(loop_, &c->watcher);
    idle_.unlink(*c);
    net::close_fd(c->session.fd());
    delete c;
  }

  int listen_fd_;
  struct ev_loop* loop_;
  ev_io accept_w_{};
  ev_timer sweep_w_{};
  ev_check round_w_{};
  ev_async stop_w_{};
  net::IdleList idle_;   // every open connection, oldest deadline first
  net::IoScratch scratch_;
  bool accept_paused_ = false;
};

int run(const server::Options& opt, server::Control& control) {
  auto server = std::make_shared<Server>(opt, control.listeners().front());
  return server->run(control, server);
}

}  // namespace

CBENCH_REGISTER_MODEL(selector, "selector",
                      "one thread, libev level-triggered monitors, handlers inline, monitor closed and re-registered "
                      "after every request (nio4r single thread)",
                      server::ListenerLayout::one, &run)
