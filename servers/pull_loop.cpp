// Model: pull-loop (Ever's single-thread server, "ever single thread" in the published table).
//
// One thread runs a callback-less pull loop (backends/loop: libev by default, `--backend epoll`
// for the raw-epoll implementation). Nothing is registered as a handler: the listener is watched
// persistently under a constant key, each connection under its own address as key, and the loop
// body pulls keys and switches on them. A ready connection is handled inline: read, parse,
// answer, write; then it is watched again with a one-shot read (or write, when the socket is
// full) watch under the same key. Ever's example re-arms through an emitted [:watch_io] command
// that comes back as an event; re-arming directly does the same work with one less trip through
// the emit queue.
//
// --threads: ignored (one thread). --gvl: accepted, no effect (one thread never contends).
// /sleep and /spin: run on the loop thread, stalling every connection for their duration.
// Idle timeout: a repeating timer key sweeps connections with no completed request.
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <memory>

#include "backends/loop/pull_loop.h"
#include "backends/net/accept.h"
#include "backends/net/idle_list.h"
#include "backends/net/nb_session.h"
#include "backends/net/socket.h"
#include "backends/server/model.h"

namespace {

using namespace cb;

// --backend: which pull-loop implementation runs (backends/loop).
constexpr server::ModelOption kBackend{"--backend", server::ArgKind::word, "libev", "libev|epoll", 0, 0,
                                       "the pull loop's implementation: libev (default) or raw epoll"};
constexpr server::ModelOption kOptions[] = {kBackend};

// Keys: connections use their (8-byte aligned) address; small odd constants cannot collide.
constexpr loop::Key kAcceptKey = 1;
constexpr loop::Key kSweepKey = 3;

struct Conn : net::IdleNode {
  explicit Conn(int fd) : session(fd) {}
  net::NbSession session;
  bool writing = false;    // the current one-shot watch is for writability
  bool timed_out = false;  // the idle deadline passed while its readiness was already in the
                           // current batch: on_ready closes it unless that step completes a request
};

class Server {
 public:
  Server(const server::Options& opt, int listen_fd, std::shared_ptr<loop::PullLoop> loop)
      : listen_fd_(listen_fd), loop_(std::move(loop)), idle_(std::chrono::milliseconds(opt.idle_timeout_ms)) {}

  int run(server::Control& control) {
    if (!net::set_nonblocking(listen_fd_) ||
        !watch_listener() ||
        loop_->watch_timer(kSweepKey, net::kSweepPeriod, net::kSweepPeriod) != loop::WatchStatus::ok) {
      std::fprintf(stderr, "cbench-server: pull-loop: unable to watch the listener\n");
      return 1;
    }
    control.on_stop([loop = loop_] { loop->stop(); });
    loop_->each([this](loop::Key key) {
      if (key == kAcceptKey) on_accept();
      else if (key == kSweepKey) on_sweep();
      else on_ready(reinterpret_cast<Conn*>(key));
    });
    while (net::IdleNode* n = idle_.expired(net::Clock::time_point::max())) close(static_cast<Conn*>(n));
    return 0;
  }

 private:
  // The acceptor takes a bounded batch; out of descriptors, the listener is unwatched until the
  // next sweep.
  void on_accept() {
    acceptor_.on_readable(
        [this](int fd) {
          auto* c = new Conn(fd);
          idle_.touch(*c, net::Clock::now());
          arm(c, net::want::read);
        },
        [this] { (void)loop_->unwatch(kAcceptKey); });
  }

  // A connection's one-shot watch fired: one step of its protocol, then re-arm or close.
  void on_ready(Conn* c) {
    net::want w = waiting_write(c) ? c->session.on_writable(scratch_) : c->session.on_readable(scratch_);
    if (c->session.take_progress()) {
      c->timed_out = false;
      idle_.touch(*c, net::Clock::now());
    } else if (c->timed_out) {
      w = net::want::close;
    }
    arm(c, w);
  }

  void arm(Conn* c, net::want w) {
    if (w == net::want::close) return close(c);
    c->writing = (w == net::want::write);
    auto interest = c->writing ? loop::Interest::writable : loop::Interest::readable;
    if (loop_->watch_io(key_of(c), c->session.fd(), interest, /*oneshot=*/true) != loop::WatchStatus::ok) close(c);
  }

  void on_sweep() {
    auto now = net::Clock::now();
    while (net::IdleNode* n = idle_.expired(now)) {
      auto* c = static_cast<Conn*>(n);
      if (loop_->unwatch(key_of(c))) {
        close(c);
        continue;
      }
      // Its one-shot watch has fired: its key is in the current batch, handed out after this
      // sweep. Deleting it here would give on_ready a dangling pointer (or a connection accepted
      // later in this batch at the same address: ASan and TSan caught both, conformance's
      // 1 ms idle-timeout churn case). on_ready decides instead.
      c->timed_out = true;
      idle_.touch(*c, now);
    }
    acceptor_.on_sweep([this] { return watch_listener(); });
  }

  bool watch_listener() {
    return loop_->watch_io(kAcceptKey, listen_fd_, loop::Interest::readable, /*oneshot=*/false) == loop::WatchStatus::ok;
  }

  void close(Conn* c) {
    (void)loop_->unwatch(key_of(c));  // false when its one-shot watch already fired
    idle_.unlink(*c);
    net::close_connection(c->session.fd());
    delete c;
  }

  static loop::Key key_of(Conn* c) { return reinterpret_cast<loop::Key>(c); }
  static bool waiting_write(Conn* c) { return c->writing; }

  int listen_fd_;
  // Shared with the stop callback: the signal thread may still be inside loop->stop() (writing
  // its wake-up) after run() has returned, so the loop must outlive this object.
  std::shared_ptr<loop::PullLoop> loop_;
  net::IdleList idle_;
  net::IoScratch scratch_;
  net::Acceptor acceptor_{listen_fd_};
};

int run(const server::Options& opt, server::Control& control) {
  const loop::Backend backend = loop::parse_backend(opt.value(kBackend)).value_or(loop::Backend::libev);
  auto server = std::make_unique<Server>(opt, control.listeners().front(), std::shared_ptr<loop::PullLoop>(loop::make_pull_loop(backend)));
  return server->run(control);
}

}  // namespace

CBENCH_REGISTER_MODEL(pull_loop, "pull-loop",
                      "one thread, callback-less pull loop (libev or --backend epoll), inline handling, one-shot re-arm (Ever single thread)",
                      server::ListenerLayout::one, &run, {}, nullptr, kOptions)
