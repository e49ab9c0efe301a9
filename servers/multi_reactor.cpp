// Model: multi-reactor (the design of nginx and h2o).
//
// N independent epoll reactors, one per thread, each with its own listening socket bound to the
// same port with SO_REUSEPORT: the kernel hashes every new connection to one listener, and that
// connection lives on that reactor's thread for its whole life. The reactors share nothing (no
// lock, no queue, no handoff between threads); each is exactly the epoll-reactor model
// (reactor::ReactorServer: the same acceptor and connection handlers), so multi-reactor at
// --threads 1 is epoll-reactor, and the rows differ only in the number of reactors. This is the
// modern baseline that every other model should be compared with.
//
// --threads N: N reactor threads and N listeners (N = cores is the usual setting).
// /sleep: blocks one reactor thread, stalling every connection the kernel gave to that reactor
//   (about 1/N of them); the other reactors carry on. Nothing moves a stalled reactor's
//   connections elsewhere: there is no work stealing.
// /spin: the same, for CPU: a reactor busy spinning serves nobody else; with N >= cores the
//   kernel time-slices the busy reactors.
// Idle timeout and EMFILE: per reactor, as in epoll-reactor (sweep four times a second; the
//   listener is unwatched until the next sweep when descriptors run out).
// Stop: Control::on_stop wakes every reactor (an eventfd write each); each closes its
//   connections and its thread ends; run() joins them.
#include <chrono>
#include <memory>
#include <system_error>
#include <thread>
#include <vector>

#include "backends/reactor/reactor_server.h"
#include "backends/server/model.h"
#include "backends/server/threads.h"

namespace {

using namespace cb;

int run(const server::Options& opt, server::Control& control) {
  return server::run_loop_per_listener<reactor::ReactorServer>("multi-reactor", control,
                                                          std::chrono::milliseconds(opt.idle_timeout_ms));
}

}  // namespace

CBENCH_REGISTER_MODEL(multi_reactor, "multi-reactor",
                      "N independent epoll reactors, one per thread, each on its own SO_REUSEPORT listener (nginx, h2o)",
                      server::ListenerLayout::per_thread, &run)
