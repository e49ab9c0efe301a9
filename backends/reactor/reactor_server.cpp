#include "backends/reactor/reactor_server.h"

#include "backends/net/socket.h"

namespace cb::reactor {

using namespace cb::net;

// A connection: the NbSession pump plus its current epoll interest. State between callbacks lives
// here and in the session ("writing backwards").
class ReactorServer::Connection final : public Reactor::Handler, public IdleNode {
 public:
  Connection(ReactorServer& server, int fd) : server_(server), session_(fd) {}
  bool on_readable() override { return apply(session_.on_readable(server_.scratch_)); }
  bool on_writable() override { return apply(session_.on_writable(server_.scratch_)); }
  int fd() const { return session_.fd(); }

 private:
  // Follows the session's wish: close, wait for writability, or wait for readability.
  bool apply(want w) {
    if (session_.take_progress()) server_.touch(*this);
    switch (w) {
      case want::close:
        server_.close(this);
        return false;
      case want::write:
        if (!writing_) server_.set_interest(*this, true);
        writing_ = true;
        return true;
      case want::read:
        if (writing_) server_.set_interest(*this, false);
        writing_ = false;
        return true;
    }
    return true;
  }

  ReactorServer& server_;
  NbSession session_;
  bool writing_ = false;  // current interest: writable (true) or readable (false)
};

ReactorServer::ReactorServer(int listen_fd, std::chrono::milliseconds idle_timeout)
    : listen_fd_(listen_fd), idle_(idle_timeout), acceptor_(listen_fd) {
  ok_ = reactor_.ok() && set_nonblocking(listen_fd_) && reactor_.add(listen_fd_, this, true, false);
}

ReactorServer::~ReactorServer() {
  while (IdleNode* n = idle_.expired(Clock::time_point::max())) close(static_cast<Connection*>(n));
}

int ReactorServer::run() {
  if (!ok_) return 1;
  reactor_.run(kSweepPeriod, [this] { on_tick(); });
  while (IdleNode* n = idle_.expired(Clock::time_point::max())) close(static_cast<Connection*>(n));
  return 0;
}

bool ReactorServer::on_readable() {
  acceptor_.on_readable(
      [this](int fd) {
        auto* c = new Connection(*this, fd);
        if (!reactor_.add(fd, c, true, false)) {
          delete c;
          close_connection(fd);
          return;
        }
        idle_.touch(*c, Clock::now());
      },
      [this] { reactor_.remove(listen_fd_); });
  return true;
}

void ReactorServer::on_tick() {
  auto now = Clock::now();
  while (IdleNode* n = idle_.expired(now)) close(static_cast<Connection*>(n));
  acceptor_.on_sweep([this] { return reactor_.add(listen_fd_, this, true, false); });
}

void ReactorServer::set_interest(Connection& c, bool writable) { reactor_.modify(c.fd(), &c, !writable, writable); }

void ReactorServer::touch(Connection& c) { idle_.touch(c, Clock::now()); }

void ReactorServer::close(Connection* c) {
  idle_.unlink(*c);
  reactor_.remove(c->fd());
  close_connection(c->fd());
  delete c;
}

}  // namespace cb::reactor
