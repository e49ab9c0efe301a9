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
// EMFILE: net::Acceptor unwatches the listener until the next sweep. Accepts and closes are
// counted there and in the close (backends/ever/served.h, shared with worker-pool).
#include <chrono>
#include <memory>

#include "backends/ever/served.h"
#include "backends/loop/pull_loop.h"
#include "backends/net/nb_session.h"
#include "backends/server/model.h"

namespace {

using namespace cb;
using ever::Conn;

constexpr server::ModelOption kOptions[] = {ever::kBackend};

class Server {
 public:
  Server(const server::Options& opt, int listen_fd, std::shared_ptr<loop::PullLoop> loop)
      : loop_(std::move(loop)), served_(listen_fd, loop_, std::chrono::milliseconds(opt.idle_timeout_ms)) {}

  int run(server::Control& control) {
    if (!served_.start("pull-loop")) return 1;
    control.on_stop([loop = loop_] { loop->stop(); });
    loop_->each([this](loop::Key key) {
      if (key == ever::kAcceptKey) served_.on_accept([this](Conn* c) { arm(c, net::want::read); });
      else if (key == ever::kSweepKey) served_.on_sweep();
      else on_ready(reinterpret_cast<Conn*>(key));
    });
    served_.close_all();
    return 0;
  }

 private:
  // A connection's one-shot watch fired: one step of its protocol, then re-arm or close (also when
  // the idle sweep found it timed out and this step completed no request).
  void on_ready(Conn* c) {
    net::want w = c->writing ? c->session.on_writable(scratch_) : c->session.on_readable(scratch_);
    if (!served_.keep_after_step(c)) w = net::want::close;
    arm(c, w);
  }

  void arm(Conn* c, net::want w) {
    if (w == net::want::close) return served_.close(c);
    c->writing = (w == net::want::write);
    auto interest = c->writing ? loop::Interest::writable : loop::Interest::readable;
    if (loop_->watch_io(ever::key_of(c), c->session.fd(), interest, /*oneshot=*/true) != loop::WatchStatus::ok) {
      served_.close(c);
    }
  }

  // Shared with the stop callback: the signal thread may still be inside loop->stop() (writing
  // its wake-up) after run() has returned, so the loop must outlive this object.
  std::shared_ptr<loop::PullLoop> loop_;
  ever::Served served_;  // the listener, the idle sweep and closes (backends/ever/served.h)
  net::IoScratch scratch_;
};

int run(const server::Options& opt, server::Control& control) {
  auto server = std::make_unique<Server>(opt, control.listeners().front(), ever::make_loop(opt));
  return server->run(control);
}

}  // namespace

CBENCH_REGISTER_MODEL(pull_loop, "pull-loop",
                      "one thread, callback-less pull loop (libev or --backend epoll), inline handling, one-shot re-arm (Ever single thread)",
                      server::ListenerLayout::one, &run, {}, nullptr, kOptions)
