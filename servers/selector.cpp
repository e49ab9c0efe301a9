// Model: selector (nio4r's single-thread server: "nio4r single thread" in the published table;
// digital-fabric/ever examples/http_server_nio4r_single_thread.rb).
//
// One thread runs a libev loop, as NIO::Selector does underneath. Every watcher is
// level-triggered (a plain ev_io, nio4r's monitor). Handlers run inline, inside the loop's
// callbacks, as the example's `selector.select do |monitor| ... end` block runs them: the
// listener's callback accepts a bounded batch (net::Acceptor, as every model that polls its
// listener; the example calls server.accept once per event and level-triggering brings it back
// for the rest, the same batch spread over loop rounds), a connection's callback reads, parses,
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
// EMFILE: the acceptor stops the listener's watcher until the next sweep, so accept neither spins
// nor dies.
// Stop: Control::on_stop sends an ev_async; the loop breaks, closes every connection and returns.
// Counters: dispatches (connection callbacks), rearms, poll_rounds (loop iterations), accepts
// (net::Acceptor), closes (net::close_connection); empty_reads come from the session.
// The libev scaffolding (loop, the acceptor, sweep timer, stop, monitor re-registration)
// is backends/selector/ev_selector.h, shared with selector-pool; this file is the inline model only.
#include <ev.h>

#include <chrono>
#include <cstdio>
#include <memory>

#include "backends/selector/ev_selector.h"
#include "backends/selector/run_model.h"
#include "backends/net/idle_list.h"
#include "backends/net/nb_session.h"
#include "backends/net/socket.h"
#include "backends/stats/counters.h"
#include "backends/server/model.h"

namespace {

using namespace cb;
using stats::Counter;

struct Conn : net::IdleNode {
  explicit Conn(int fd) : session(fd) {}
  ev_io watcher{};  // the connection's monitor; stopped and started again after every step
  net::NbSession session;
};

class Server {
 public:
  Server(const server::Options& opt, int listen_fd)
      : selector_(*this, listen_fd), idle_(std::chrono::milliseconds(opt.idle_timeout_ms)) {}

  int run(server::Control& control, const std::shared_ptr<Server>& self) {
    if (!selector_.start()) {
      std::fprintf(stderr, "cbench-server: selector: unable to start the libev loop\n");
      return 1;
    }
    // The stop function keeps the server (and its loop) alive while it may still be sending.
    control.on_stop([self] { self->selector_.stop(); });

    ev_run(selector_.loop(), 0);

    while (net::IdleNode* n = idle_.expired(net::Clock::time_point::max())) close(static_cast<Conn*>(n));
    return 0;
  }

  // -- selector::EvSelector's model contract ---------------------------------------------------
  void on_accepted(int fd) {
    auto* c = new Conn(fd);
    c->watcher.data = c;
    ev_io_init(&c->watcher, &Server::on_conn_cb, fd, EV_READ);
    ev_io_start(selector_.loop(), &c->watcher);
    idle_.touch(*c, net::Clock::now());
  }

  void on_sweep(net::Clock::time_point now) {
    while (net::IdleNode* n = idle_.expired(now)) close(static_cast<Conn*>(n));
  }

  void on_stop_requested() {}

 private:
  static void on_conn_cb(struct ev_loop* l, ev_io* w, int revents) {
    selector::EvSelector<Server>::model_of(l).on_connection(static_cast<Conn*>(w->data), revents);
  }

  // handle_connection: one step of the session, then `conn.monitor(event)` or `conn.close`.
  void on_connection(Conn* c, int revents) {
    stats::count(Counter::dispatches);
    net::want w = (revents & EV_WRITE) ? c->session.on_writable(scratch_) : c->session.on_readable(scratch_);
    if (w == net::want::close) return close(c);
    if (c->session.take_progress()) idle_.touch(*c, net::Clock::now());
    selector_.monitor(c->watcher, c->session.fd(), w == net::want::write ? EV_WRITE : EV_READ);
  }

  void close(Conn* c) {
    ev_io_stop(selector_.loop(), &c->watcher);
    idle_.unlink(*c);
    net::close_connection(c->session.fd());
    delete c;
  }

  selector::EvSelector<Server> selector_;
  net::IdleList idle_;   // every open connection, oldest deadline first
  net::IoScratch scratch_;
};

}  // namespace

CBENCH_REGISTER_MODEL(selector, "selector",
                      "one thread, libev level-triggered monitors, handlers inline, monitor closed and re-registered "
                      "after every request (nio4r single thread)",
                      server::ListenerLayout::one, &selector::run_on_listener<Server>)
