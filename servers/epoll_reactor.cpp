// Model: epoll-reactor (EventMachine's style).
//
// One thread, non-blocking sockets, one level-triggered epoll set. Each descriptor has a handler
// object whose callbacks the reactor calls by event: the acceptor's on_readable accepts, a
// connection's on_readable reads, parses, answers and writes; when the socket is full the
// connection switches its interest to writable and on_writable finishes the write. State between
// calls lives in the connection object ("writing backwards"). This is also the selector-style
// loop of nio4r, the published table's other family.
//
// The acceptor and connection handlers are reactor::ReactorServer (backends/reactor/reactor_server.h),
// shared with multi-reactor so that the two models differ only in how many reactors run.
//
// --threads: ignored (always one thread; see multi-reactor for one reactor per thread).
// /sleep and /spin: run on the only thread, so they stall every connection for their duration.
// Idle timeout: connections without a completed request for --idle-timeout-ms are closed by a
// sweep four times a second.
// EMFILE: the listener is unwatched until the next sweep, so accept neither spins nor dies
//   (net::Acceptor, which also counts accepts; closes are counted as connections close).
// Stop: Control::on_stop wakes the reactor (eventfd); run() closes every connection and returns.
#include <chrono>
#include <memory>

#include "backends/reactor/reactor_server.h"
#include "backends/server/model.h"

namespace {

using namespace cb;

int run(const server::Options& opt, server::Control& control) {
  // Shared with the stop function, which may still be returning from its eventfd write when the
  // reactor has seen the stop and returned.
  auto reactor = std::make_shared<reactor::ReactorServer>(control.listeners().front(),
                                                      std::chrono::milliseconds(opt.idle_timeout_ms));
  if (!reactor->ok()) return 1;
  control.on_stop([reactor] { reactor->stop(); });
  return reactor->run();
}

}  // namespace

CBENCH_REGISTER_MODEL(epoll_reactor, "epoll-reactor",
                      "one thread, level-triggered epoll, per-connection on_readable/on_writable callbacks (EventMachine style)",
                      server::ListenerLayout::one, &run)
