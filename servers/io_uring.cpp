// Model: io-uring (completion-based: the proactor that Asio emulates over epoll, done by the kernel).
//
// Per thread one io_uring (backends/uring/loop.h): a multishot accept on the thread's own
// SO_REUSEPORT listener, per connection one receive into the thread's provided-buffer ring fed to
// the shared request pump (backends/http/pump.h), its output sent with one send (a partial send is continued from where it stopped),
// and one io_uring_submit_and_wait per loop round that hands the kernel every SQE the round
// queued and reaps what completed, usually in one io_uring_enter for all connections. An idle
// connection has a receive waiting and owns no read buffer: the kernel picks one when data
// arrives and the loop gives it back as soon as the pump has consumed it. The pump's own output
// buffer (about one response, kept for the connection's life) is what a connection holds. The
// kernel holds the waiting receive (an io_kiocb, a 256-byte slab object, and its poll entry):
// slab memory that /proc/net/sockstat's TCP "mem" (socket buffers only) does not show. No SQPOLL (a kernel
// polling thread would make "fewer system calls" trivial and its CPU would not show as ours).
//
// --threads N: N loops, N rings, N listeners (the kernel spreads connections between them).
// /sleep and /spin: run on the loop's thread, so they stall that thread's connections.
// Idle timeout: connections without a completed request for --idle-timeout-ms are closed by a
// sweep four times a second, which cancels the connection's receive (or send) and closes the
// socket when the cancelled operation completes.
// EMFILE: the multishot accept ends with -EMFILE; it is re-armed by the next sweep (not at
// once), so a full file table is neither spun on nor fatal. A kernel without multishot accept
// (before 5.19) answers -EINVAL: the loop then arms one accept per connection (stated fallback).
// The kernel accepts (an accept SQE), not net::Acceptor, so this pause is the loop's own; the
// loop counts accepts and closes through net::count_accepted and net::close_connection.
// Probing: before the readiness line, cbench-server checks that io_uring can be set up (it is
// refused under io_uring_disabled=2 or a seccomp filter), that it waits with a timeout in one
// call (IORING_FEAT_EXT_ARG) and that it has provided-buffer rings; if not it prints one line
// naming what is missing and exits 77 (the conformance suite reports that as skipped).
// Stop: Control::on_stop writes each loop's eventfd, which has a read pending in the ring; the
// loop cancels its accept and every connection's operation, reaps their completions (bounded)
// and closes every socket.
//
// --uring-recv multishot (opt-in; default single, the receives described above): per connection
// one IORING_RECV_MULTISHOT receive from the same buffer ring stays armed across requests, so a
// request costs one SQE (its send) instead of two. Input that arrives while the connection sends
// is held in its kernel buffer, at most uring::kHeldBuffersPerConn (4 x 16 KiB) per connection;
// a full queue cancels the receive until it drains (the back-pressure), ENOBUFS endings are
// re-armed, every buffer goes back once fed or at close/stop (backends/uring/loop.h). The pump
// sees the same feed/consumed calls as in single mode, so responses are byte-identical. Counters:
// `rearms` (receive re-armed), `recv_nobufs`, `recv_pauses`. Probing adds a multishot receive on a
// socketpair (Linux 6.0); without it the model exits 77 with one line naming it (no fallback: a
// row labelled multishot that silently ran single-shot would measure the wrong thing).
//
// --uring-min-wait-us N (opt-in; default 0): each round's wait asks the kernel for one completion
// per open connection and settles for the first after N microseconds (IORING_FEAT_MIN_TIMEOUT,
// Linux 6.13; backends/ring/ring.h). When the server is faster than its clients, the default
// enters the ring about once per request (each wait ends at the first completion); a batched wait
// collects the completions that arrive within N us, so a round answers several requests for one
// system call, and each response may leave up to N us later. Not the default: the rows of every
// scenario keep the zero-delay wait, and a row that trades latency for system calls says so by
// its flag. Without the feature the model exits 77 with one line naming it (no silent fallback).
#include <string>
#include <string_view>

#include "backends/http/pump.h"
#include "backends/server/model.h"
#include "backends/server/threads.h"
#include "backends/uring/http_session.h"
#include "backends/uring/loop.h"

namespace {

using namespace cb;

using HttpSession = uring::HttpSession;  // backends/uring/http_session.h

using HttpLoop = uring::Loop<HttpSession>;

constexpr server::ModelOption kUringRecv{
    "--uring-recv", server::ArgKind::word, "single", "single|multishot", 0, 0,
    "single (default) arms one receive per read; multishot keeps one multishot receive armed per connection "
    "(Linux 6.0; refused with exit 77 where missing)"};
constexpr server::ModelOption kUringMinWaitUs{
    "--uring-min-wait-us", server::ArgKind::integer, "0", "", 0, 1000,
    "0 (default): a round's wait ends at the first completion; N: it asks for one completion per open connection "
    "and settles for the first after N us (fewer enters, up to N us added latency; Linux 6.13, else exit 77)"};
constexpr server::ModelOption kOptions[] = {kUringRecv, kUringMinWaitUs};

int run(const server::Options& opt, server::Control& control) {
  uring::LoopConfig config{"io-uring", std::chrono::milliseconds(opt.idle_timeout_ms)};
  config.recv = opt.value(kUringRecv) == "multishot" ? uring::RecvMode::multishot : uring::RecvMode::single;
  config.min_wait = std::chrono::microseconds(opt.int_value(kUringMinWaitUs));
  return server::run_loop_per_listener<HttpLoop>("io-uring", control, config);
}

// What every io_uring loop needs, with --uring-recv multishot the multishot receive, and with
// --uring-min-wait-us the batched wait.
std::string probe_kernel(const server::Options& opt) {
  std::string missing = uring::probe();
  if (missing.empty() && opt.value(kUringRecv) == "multishot") {
    missing = uring::probe_recv_multishot();
    if (!missing.empty()) missing = "--uring-recv multishot: " + missing;
  }
  if (missing.empty() && opt.int_value(kUringMinWaitUs) > 0) {
    missing = uring::probe_min_wait();
    if (!missing.empty()) missing = "--uring-min-wait-us: " + missing;
  }
  return missing;
}

}  // namespace

CBENCH_REGISTER_MODEL(io_uring_model, "io-uring",
                      "one io_uring per --threads on its own SO_REUSEPORT listener: multishot accept, receives into "
                      "provided buffers, one submit-and-wait per round (completion-based; no SQPOLL)",
                      server::ListenerLayout::per_thread, &run, {}, &probe_kernel, kOptions)
