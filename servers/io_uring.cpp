// Model: io-uring (completion-based: the proactor that Asio emulates over epoll, done by the kernel).
//
// Per thread one io_uring (backends/uring/loop.h): a multishot accept on the thread's own
// SO_REUSEPORT listener, per connection one receive into the thread's provided-buffer ring, the
// shared codec's answers sent with one send (a partial send is continued from where it stopped),
// and one io_uring_submit_and_wait per loop round that hands the kernel every SQE the round
// queued and reaps what completed, usually in one io_uring_enter for all connections. An idle
// connection has a receive waiting and owns no read buffer: the kernel picks one when data
// arrives and the loop gives it back as soon as the codec has consumed it. No SQPOLL (a kernel
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
// Probing: before the readiness line, cbench-server checks that io_uring can be set up (it is
// refused under io_uring_disabled=2 or a seccomp filter), that it waits with a timeout in one
// call (IORING_FEAT_EXT_ARG) and that it has provided-buffer rings; if not it prints one line
// naming what is missing and exits 77 (the conformance suite reports that as skipped).
// Stop: Control::on_stop writes each loop's eventfd, which has a read pending in the ring; the
// loop cancels its accept and every connection's operation, reaps their completions (bounded)
// and closes every socket.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backends/http/codec.h"
#include "backends/server/model.h"
#include "backends/server/threads.h"
#include "backends/uring/loop.h"

namespace {

using namespace cb;

// The HTTP side of a connection: the shared codec, and input it held back at the output
// high-water mark (the loop receives nothing more until it is used up).
class HttpSession {
 public:
  struct Context {};
  explicit HttpSession(Context&) {}

  void on_input(Context&, std::string_view in, std::string& out) { feed(in, out, /*from_backlog=*/false); }

  void on_sent(Context&, std::string& out) {
    if (!backlog_.empty()) feed(backlog_, out, /*from_backlog=*/true);
  }

  bool has_backlog() const { return !backlog_.empty() && !codec_.closing(); }
  bool closing() const { return codec_.closing(); }
  bool take_progress() {
    bool p = progress_;
    progress_ = false;
    return p;
  }
  static void on_tick(Context&) {}

 private:
  void feed(std::string_view in, std::string& out, bool from_backlog) {
    http::FeedResult r = codec_.feed(in, out);
    if (r.responses > 0) progress_ = true;
    const std::string_view rest = in.substr(r.consumed_bytes);
    if (r.status != http::feed_status::output_full || rest.empty()) {
      // Used up: free it, so that an idle connection holds no input buffer.
      if (from_backlog) std::string().swap(backlog_);
      return;
    }
    if (from_backlog) backlog_.erase(0, r.consumed_bytes);
    else backlog_.assign(rest);  // at most one receive's worth (the receive buffer is reused)
  }

  http::Codec codec_;
  std::string backlog_;
  bool progress_ = false;
};

using HttpLoop = uring::Loop<HttpSession>;

int run(const server::Options& opt, server::Control& control) {
  // Shared with the stop functions, which may still be returning from their eventfd write when
  // the loops have seen the stop, ended and been joined.
  std::vector<std::shared_ptr<HttpLoop>> loops;
  uring::LoopConfig config{"io-uring", std::chrono::milliseconds(opt.idle_timeout_ms)};
  for (int fd : control.listeners()) loops.push_back(std::make_shared<HttpLoop>(fd, config));
  for (auto& l : loops) control.on_stop([l] { l->stop(); });
  std::vector<int> status(loops.size(), 0);
  int started = server::run_on_threads(
      "io-uring", static_cast<int>(loops.size()),
      [&](int i) {
        status[static_cast<std::size_t>(i)] = loops[static_cast<std::size_t>(i)]->run();
        if (status[static_cast<std::size_t>(i)] != 0) control.request_stop();  // one failed: stop all
      },
      [&loops] {
        for (auto& l : loops) l->stop();
      });
  for (int s : status) if (s != 0) return s;
  return started;
}

}  // namespace

CBENCH_REGISTER_MODEL(io_uring_model, "io-uring",
                      "one io_uring per --threads on its own SO_REUSEPORT listener: multishot accept, receives into "
                      "provided buffers, one submit-and-wait per round (completion-based; no SQPOLL)",
                      server::ListenerLayout::per_thread, &run, &uring::probe)
