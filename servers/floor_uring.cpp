// Instrument: floor-uring (the completion floor: the io_uring interface's floor). Not a model.
//
// What `floor` is for epoll, this is for io_uring: the least a server can do per request through
// this interface and still look like one to wrk. It drives the very loop the io-uring model uses
// (backends/uring/loop.h: per thread one ring, multishot accept, receives into provided buffers,
// one submit-and-wait per round), but its session parses nothing: it counts request terminators
// (the same http::CannedAnswer as floor) and answers each with the canned GET / bytes, all
// the answers to one receive in one send. So io-uring's distance from it is the cost of the codec
// and handler, and floor-uring's distance from floor is the cost of the interface.
//
// Why a model of its own and not `--model floor --backend io-uring`: --backend picks the pull
// loop's event library (libev | epoll) and every row is named by its model, so a separate name
// keeps the tables' rows and the option's meaning unambiguous.
//
// The canned answer and the terminator counting are floor's (backends/http/canned_answer.h):
// one per thread, its Date re-made when the second changes, checked on every loop tick.
// No idle timeout, no limits (as floor): excluded from the conformance gate by its instrument trait.
// --threads N: N loops and rings on N SO_REUSEPORT listeners. EMFILE, probing and stop: as io-uring
// (see servers/io_uring.cpp). Receives are always single-shot (io-uring's --uring-recv is not offered here).
#include <string>
#include <string_view>

#include "backends/http/canned_answer.h"
#include "backends/server/model.h"
#include "backends/server/threads.h"
#include "backends/uring/loop.h"

namespace {

using namespace cb;

// The loop's session: the shared canned answering (backends/http/canned_answer.h); this file
// holds only the io_uring side (the loop and its buffers are backends/uring/loop.h).
class FloorSession {
 public:
  // One thread's canned answer.
  using Context = http::CannedAnswer;

  explicit FloorSession(Context&) {}

  http::pump_state feed(Context& ctx, std::string_view in) {
    out_.clear();
    sent_ = 0;
    return ctx.answer(terminators_, in.data(), in.size(), out_) == 0 ? http::pump_state::read : http::pump_state::write;
  }
  std::string_view output() const { return std::string_view(out_).substr(sent_); }
  http::pump_state consumed(std::size_t n) {
    sent_ += n;
    return sent_ < out_.size() ? http::pump_state::write : http::pump_state::read;
  }
  bool take_progress() { return false; }
  bool reads_after_output() const { return true; }  // canned answers: nothing held back, never a close
  static void on_tick(Context& ctx) { ctx.refresh(); }

 private:
  http::TerminatorCounter terminators_;
  std::string out_;        // this receive's answers; a send in flight points into it
  std::size_t sent_ = 0;   // bytes of out_ already sent
};

using FloorLoop = uring::Loop<FloorSession>;

int run(const server::Options&, server::Control& control) {
  return server::run_loop_per_listener<FloorLoop>("floor-uring", control, uring::LoopConfig{"floor-uring", std::chrono::milliseconds(0)});
}

// The shared probe; the floor always receives single-shot (it ignores --uring-recv).
std::string probe_kernel(const server::Options&) { return uring::probe(); }

}  // namespace

CBENCH_REGISTER_MODEL(floor_uring_instrument, "floor-uring",
                      "completion floor, not a model: the io-uring loop (multishot accept, provided "
                      "buffers, one submit-and-wait per round) counting request terminators and sending the canned "
                      "GET / bytes for each; no parsing",
                      server::ListenerLayout::per_thread, &run, {.instrument = true}, &probe_kernel)
