// Model: worker-pool (Ever's worker-thread server: "ever N worker threads" in the published
// table; with --queues per-worker, "ever N worker threads, separate queues").
//
// The loop thread runs a callback-less pull loop. It alone accepts and touches watchers. When a
// connection's one-shot watch fires, the loop puts the connection on a job queue. --threads N
// workers pop connections, read, parse, answer and write (the same NbSession step as pull-loop),
// then send a command back to the loop thread with emit(): watch for reading, watch for writing,
// or close. The loop turns each command into a watch_io or a close. A connection is owned by
// exactly one side at a time: the loop while watched, a queue or a worker while busy.
//
// --queues shared: one queue for all workers (the table's worker rows). --queues per-worker: one
// queue per worker; the loop picks a random worker for every readiness event, so a connection is
// not sticky to a worker (the table's "separate queues" rows).
// --gvl: emulate Ruby's global VM lock (backends/queue/gvl.h says what it covers). Workers hold
// it while running a job and release it while blocked on an empty queue (Queue#pop); the loop
// thread holds it while dispatching events and releases it around each poll round (Ruby
// releases it around libev's blocking poll). --gvl-emulation picks the kind:
//   ruby31 (default): Ruby 3.1's rules: a release wakes the longest waiter without handing the
//     lock over, also released around a worker's read (read_nonblock) but held through its write
//     (write_nonblock), and a 100 ms timer checked after every dispatched event, every job and
//     every blocking region;
//   fifo: the second emulation: hand-off to the longest waiter at every release, released around
//     the read and the write;
//   mutex: the first emulation (an unfair std::mutex held through a whole job, no time slice),
//     kept to reproduce runs made with it.
// --threads: number of workers (the loop thread is extra).
// /sleep: occupies one worker; other workers keep serving. /spin: occupies one worker's CPU time;
// with the server pinned to one CPU, workers and the loop thread share that CPU.
// Idle timeout and EMFILE: as pull-loop (backends/ever/served.h, shared with it): a sweep four times a
// second, a connection held by a worker decided when its command comes back; net::Acceptor
// unwatches the listener until the next sweep. Accepts and closes are counted there.
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

#include "backends/ever/served.h"
#include "backends/loop/pull_loop.h"
#include "backends/net/nb_session.h"
#include "backends/queue/gvl.h"
#include "backends/queue/job_queue.h"
#include "backends/server/model.h"

namespace {

using namespace cb;
using ever::Conn;

constexpr server::ModelOption kQueues{"--queues", server::ArgKind::word, "shared", "shared|per-worker", 0, 0,
                                      "one job queue shared by every worker (default), or one per worker"};
constexpr server::ModelOption kGvl{"--gvl", server::ArgKind::flag, "", "", 0, 0,
                                   "emulate Ruby's global VM lock (held except while blocked)"};
constexpr server::ModelOption kGvlEmulation{"--gvl-emulation", server::ArgKind::word, "ruby31", "ruby31|fifo|mutex", 0, 0,
                                            "with --gvl: Ruby 3.1's GVL rules (default), the FIFO hand-off at every "
                                            "release (second emulation) or an unfair mutex held through a job (first)"};
constexpr server::ModelOption kOptions[] = {kQueues, kGvl, kGvlEmulation, ever::kBackend};

// A connection's key plus a command in its low bits is an emitted command (ever::key_of: the
// address of an 8-byte aligned Conn; the loop's own keys are below 8).
constexpr loop::Key kCmdMask = 7;
enum Cmd : loop::Key { kReady = 0, kWatchRead = 1, kWatchWrite = 2, kClose = 3 };

using Queue = queue::JobQueue<Conn*>;

class Server {
 public:
  Server(const server::Options& opt, int listen_fd, std::shared_ptr<loop::PullLoop> loop)
      : opt_(opt), loop_(std::move(loop)), served_(listen_fd, loop_, std::chrono::milliseconds(opt.idle_timeout_ms)),
        gvl_(opt.is_set(kGvl), queue::Gvl::kind_named(opt.value(kGvlEmulation)).value_or(queue::Gvl::Kind::ruby31)) {
    int nqueues = opt.value(kQueues) == "per-worker" ? opt.threads : 1;
    for (int i = 0; i < nqueues; ++i) queues_.push_back(std::make_unique<Queue>());
  }

  int run(server::Control& control) {
    if (!served_.start("worker-pool")) return 1;
    control.on_stop([loop = loop_] { loop->stop(); });
    for (int i = 0; i < opt_.threads; ++i) {
      Queue& q = *queues_[queues_.size() == 1 ? 0 : static_cast<std::size_t>(i)];
      workers_.emplace_back([this, &q] { work(q); });
    }

    gvl_.lock();
    while (!loop_->stopped()) {
      std::optional<loop::Key> key;
      if (loop_->batch_exhausted()) {
        gvl_.unlock();  // Ruby releases its lock around the blocking ev_run
        key = loop_->next_event();
        gvl_.lock();
        gvl_.check_interrupts();
      } else {
        key = loop_->next_event();
      }
      if (key) dispatch(*key);
      gvl_.check_interrupts();
    }
    gvl_.unlock();

    for (auto& q : queues_) q->close();
    for (auto& t : workers_) t.join();
    served_.close_all();
    return 0;
  }

 private:
  void dispatch(loop::Key key) {
    if (key == ever::kAcceptKey) return served_.on_accept([this](Conn* c) { arm(c); });
    if (key == ever::kSweepKey) return served_.on_sweep();
    auto* c = reinterpret_cast<Conn*>(key & ~kCmdMask);
    switch (static_cast<Cmd>(key & kCmdMask)) {
      case kReady:
        c->busy = true;
        pick_queue().push(c);
        return;
      case kWatchRead:
      case kWatchWrite:
        c->busy = false;
        if (!served_.keep_after_step(c)) return served_.close(c);  // timed out while busy
        c->writing = (key & kCmdMask) == kWatchWrite;
        return arm(c);
      case kClose:
        return served_.close(c);
    }
  }

  // Worker thread: pop, step, send the command back. Holds the GVL except while blocked.
  void work(Queue& q) {
    net::IoScratch scratch;
    net::BlockingRegion* around = gvl_.enabled() ? &gvl_ : nullptr;  // the session's read and write
    gvl_.lock();
    Conn* c = nullptr;
    while (q.pop(c, [this] { gvl_.unlock(); }, [this] {
      gvl_.lock();
      gvl_.check_interrupts();  // Queue#pop's sleep ends with a check point
    })) {
      net::want w = c->writing ? c->session.on_writable(scratch, around) : c->session.on_readable(scratch, around);
      Cmd cmd = w == net::want::read ? kWatchRead : w == net::want::write ? kWatchWrite : kClose;
      loop_->emit(ever::key_of(c) | cmd);
      gvl_.check_interrupts();
    }
    gvl_.unlock();
  }

  Queue& pick_queue() {
    if (queues_.size() == 1) return *queues_[0];
    // xorshift64: a random worker per readiness event, as Ever's separate-queues example does.
    rng_ ^= rng_ << 13;
    rng_ ^= rng_ >> 7;
    rng_ ^= rng_ << 17;
    return *queues_[rng_ % queues_.size()];
  }

  void arm(Conn* c) {
    auto interest = c->writing ? loop::Interest::writable : loop::Interest::readable;
    if (loop_->watch_io(ever::key_of(c), c->session.fd(), interest, /*oneshot=*/true) != loop::WatchStatus::ok) {
      served_.close(c);
    }
  }

  const server::Options& opt_;
  // Shared with the stop callback: the signal thread may still be inside loop->stop() (writing
  // its wake-up) after run() has returned, so the loop must outlive this object.
  std::shared_ptr<loop::PullLoop> loop_;
  ever::Served served_;  // the listener, the idle sweep and closes (backends/ever/served.h)
  queue::Gvl gvl_;
  std::vector<std::unique_ptr<Queue>> queues_;
  std::vector<std::thread> workers_;
  std::uint64_t rng_ = 0x9E3779B97F4A7C15ULL;
};

int run(const server::Options& opt, server::Control& control) {
  auto server = std::make_unique<Server>(opt, control.listeners().front(), ever::make_loop(opt));
  return server->run(control);
}

}  // namespace

CBENCH_REGISTER_MODEL(worker_pool, "worker-pool",
                      "pull-loop thread accepts and watches; --threads N workers take ready connections from a job queue "
                      "(--queues shared|per-worker, --gvl, --gvl-emulation ruby31|fifo|mutex) (Ever worker threads)",
                      server::ListenerLayout::one, &run, {}, nullptr, kOptions)
