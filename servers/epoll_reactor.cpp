// Model: epoll-reactor (EventMachine's style).
//
// One thread, non-blocking sockets, one level-triggered epoll set. Each descriptor has a handler
// object whose callbacks the reactor calls by event: the acceptor's on_readable accepts, a
// connection's on_readable reads, parses, answers and writes; when the socket is full the
// connection switches its interest to writable and on_writable finishes the write. State between
// calls lives in the connection object ("writing backwards"). This is also the selector-style
// loop of nio4r, the published table's other family.
//
// --threads: ignored (always one thread; see multi-reactor for one reactor per thread).
// /sleep and /spin: run on the only thread, so they stall every connection for their duration.
// Idle timeout: connections without a completed request for --idle-timeout-ms are closed by a
// sweep every kTick.
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <memory>

#include "backends/net/idle_list.h"
#include "backends/net/nb_session.h"
#include "backends/net/reactor.h"
#include "backends/net/socket.h"
#include "backends/server/model.h"

namespace {

using namespace cb;

// Idle sweeps and accept retries run this often. Coarse on purpose: a wake-up 4 times a second
// costs nothing measurable, and timeouts are seconds long.
constexpr auto kTick = std::chrono::milliseconds(250);
// Connections accepted per readiness event of the listener, so that a connect storm cannot
// starve established connections.
constexpr int kMaxAcceptsPerEvent = 64;

class Server;

class Connection final : public net::Reactor::Handler, public net::IdleNode {
 public:
  Connection(Server& server, int fd) : server_(server), session_(fd) {}
  bool on_readable() override;
  bool on_writable() override;
  int fd() const { return session_.fd(); }

 private:
  bool apply(net::want w);
  Server& server_;
  net::NbSession session_;
  bool writing_ = false;  // current interest: writable (true) or readable (false)
};

class Server final : public net::Reactor::Handler {
 public:
  Server(const server::Options& opt, int listen_fd)
      : listen_fd_(listen_fd), idle_(std::chrono::milliseconds(opt.idle_timeout_ms)) {}

  int run(server::Control& control) {
    if (!reactor_.ok() || !net::set_nonblocking(listen_fd_) || !reactor_.add(listen_fd_, this, true, false)) return 1;
    control.on_stop([this] { reactor_.stop(); });
    reactor_.run(kTick, [this] { on_tick(); });
    while (net::IdleNode* n = idle_.expired(net::Clock::time_point::max())) close(static_cast<Connection*>(n));
    return 0;
  }

  // The listener is readable: accept a bounded batch.
  bool on_readable() override {
    for (int i = 0; i < kMaxAcceptsPerEvent; ++i) {
      int fd = net::accept_connection(listen_fd_, /*nonblocking=*/true);
      if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          // Out of descriptors: the listener stays readable, so stop watching it until the next
          // tick instead of spinning.
          reactor_.remove(listen_fd_);
          accept_paused_ = true;
        }
        break;
      }
      net::set_nodelay(fd);
      auto* c = new Connection(*this, fd);
      if (!reactor_.add(fd, c, true, false)) {
        delete c;
        net::close_fd(fd);
        continue;
      }
      idle_.touch(*c, net::Clock::now());
    }
    return true;
  }

  void set_interest(Connection& c, bool writable) { reactor_.modify(c.fd(), &c, !writable, writable); }
  void touch(Connection& c) { idle_.touch(c, net::Clock::now()); }

  void close(Connection* c) {
    idle_.unlink(*c);
    reactor_.remove(c->fd());
    net::close_fd(c->fd());
    delete c;
  }

  net::IoScratch& scratch() { return scratch_; }

 private:
  void on_tick() {
    auto now = net::Clock::now();
    while (net::IdleNode* n = idle_.expired(now)) close(static_cast<Connection*>(n));
    if (accept_paused_ && reactor_.add(listen_fd_, this, true, false)) accept_paused_ = false;
  }

  int listen_fd_;
  net::Reactor reactor_;
  net::IdleList idle_;
  net::IoScratch scratch_;
  bool accept_paused_ = false;
};

bool Connection::on_readable() { return apply(session_.on_readable(server_.scratch())); }
bool Connection::on_writable() { return apply(session_.on_writable(server_.scratch())); }

bool Connection::apply(net::want w) {
  if (session_.take_progress()) server_.touch(*this);
  switch (w) {
    case net::want::close:
      server_.close(this);
      return false;
    case net::want::write:
      if (!writing_) server_.set_interest(*this, true);
      writing_ = true;
      return true;
    case net::want::read:
      if (writing_) server_.set_interest(*this, false);
      writing_ = false;
      return true;
  }
  return true;
}

int run(const server::Options& opt, server::Control& control) {
  auto server = std::make_unique<Server>(opt, control.listeners().front());
  return server->run(control);
}

}  // namespace

CBENCH_REGISTER_MODEL(epoll_reactor, "epoll-reactor",
                      "one thread, level-triggered epoll, per-connection on_readable/on_writable callbacks (EventMachine style)",
                      server::ListenerLayout::one, &run)
