// One reactor's worth of HTTP serving: a listener and its connections as handlers of one
// net::Reactor, in EventMachine's style (on_readable accepts or reads, parses, answers and writes;
// a full socket switches the connection to on_writable). It runs on the thread that calls run()
// and knows nothing about how many of it there are: epoll-reactor runs one, multi-reactor runs
// one per thread, each on its own SO_REUSEPORT listener, so the two differ only in that. A helper
// of this family of models only, hence its folder; net::Reactor below it is shared (floor uses it).
#pragma once
#include <chrono>

#include "backends/net/accept.h"
#include "backends/net/idle_list.h"
#include "backends/net/nb_session.h"
#include "backends/net/reactor.h"
#include "backends/net/socket.h"

namespace cb::reactor {

class ReactorServer final : public net::Reactor::Handler {
 public:
  // Serves listen_fd (made non-blocking here; not owned: the caller closes it after run() returns).
  // Only stop() may be called from another thread.
  ReactorServer(int listen_fd, std::chrono::milliseconds idle_timeout);
  ~ReactorServer() override;
  ReactorServer(const ReactorServer&) = delete;
  ReactorServer& operator=(const ReactorServer&) = delete;

  // True if the reactor and the listener's registration are usable; run() returns 1 otherwise.
  bool ok() const { return ok_; }

  // Dispatches events on the calling thread until stop(); then closes every connection.
  // Returns 0 after a stop, 1 if the reactor could not run.
  int run();

  // Makes run() return soon. Thread-safe and non-blocking (an eventfd write).
  void stop() { reactor_.stop(); }

  // The listener is readable: the acceptor takes a bounded batch (net::Acceptor).
  bool on_readable() override;

 private:
  class Connection;  // a net::Reactor::Handler per client, in reactor_server.cpp

  void on_tick();
  void set_interest(Connection& c, bool writable);
  void touch(Connection& c);
  void close(Connection* c);

  int listen_fd_;
  net::Reactor reactor_;
  net::IdleList idle_;      // every open connection, oldest deadline first
  net::IoScratch scratch_;  // read buffer and response staging, shared by this reactor's connections
  net::Acceptor acceptor_;  // the listener's accepts, EMFILE pause and counts
  bool ok_ = false;
};

}  // namespace cb::reactor
