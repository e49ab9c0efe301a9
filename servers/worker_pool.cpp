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
// --gvl: emulate Ruby's global VM lock (backends/queue/gvl.h says what it covers): workers hold
// it while running a job and release it only while blocked on an empty queue; the loop thread
// holds it while dispatching events and releases it around each poll round.
// --threads: number of workers (the loop thread is extra).
// /sleep: occupies one worker; other workers keep serving. /spin: occupies one worker's CPU time;
// with the server pinned to one CPU, workers and the loop thread share that CPU.
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

#include "backends/loop/pull_loop.h"
#include "backends/net/accept.h"
#include "backends/net/idle_list.h"
#include "backends/net/nb_session.h"
#include "backends/net/socket.h"
#include "backends/queue/gvl.h"
#include "backends/queue/job_queue.h"
#include "backends/server/model.h"

namespace {

using namespace cb;

// --backend: which pull-loop implementation runs (backends/loop).
constexpr server::ModelOption kBackend{"--backend", server::ArgKind::word, "libev", "libev|epoll", 0, 0,
                                       "the pull loop's implementation: libev (default) or raw epoll"};
constexpr server::ModelOption kQueues{"--queues", server::ArgKind::word, "shared", "shared|per-worker", 0, 0,
                                      "one job queue shared by every worker (default), or one per worker"};
constexpr server::ModelOption kGvl{"--gvl", server::ArgKind::flag, "", "", 0, 0,
                                   "emulate Ruby's global VM lock (held except while blocked)"};
constexpr server::ModelOption kOptions[] = {kQueues, kGvl, kBackend};

// Keys. Connections are 8-byte aligned objects: the address is the watch key, and the address
// plus a command in the low bits is an emitted command. Keys below 8 are the loop's own.
constexpr loop::Key kAcceptKey = 1;
constexpr loop::Key kSweepKey = 2;
constexpr loop::Key kCmdMask = 7;
enum Cmd : loop::Key { kReady = 0, kWatchRead = 1, kWatchWrite = 2, kClose = 3 };


struct Conn : net::IdleNode {
  explicit Conn(int fd) : session(fd) {}
  net::NbSession session;
  bool writing = false;    // the step a worker runs next: on_writable (true) or on_readable
  bool busy = false;       // loop thread's view: in a queue or a worker (not watched)
  bool timed_out = false;  // the idle deadline passed while busy or with its kReady key pending:
                           // close when its command comes back unless it made progress
};

using Queue = queue::JobQueue<Conn*>;

class Server {
 public:
  Server(const server::Options& opt, int listen_fd, std::shared_ptr<loop::PullLoop> loop)
      : opt_(opt), listen_fd_(listen_fd), loop_(std::move(loop)), gvl_(opt.is_set(kGvl)),
        idle_(std::chrono::milliseconds(opt.idle_timeout_ms)) {
    int nqueues = opt.value(kQueues) == "per-worker" ? opt.threads : 1;
    for (int i = 0; i < nqueues; ++i) queues_.push_back(std::make_unique<Queue>());
  }

  int run(server::Control& control) {
    if (!net::set_nonblocking(listen_fd_) ||
        !watch_listener() ||
        loop_->watch_timer(kSweepKey, net::kSweepPeriod, net::kSweepPeriod) != loop::WatchStatus::ok) {
      std::fprintf(stderr, "cbench-server: worker-pool: unable to watch the listener\n");
      return 1;
    }
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
      } else {
        key = loop_->next_event();
      }
      if (key) dispatch(*key);
    }
    gvl_.unlock();

    for (auto& q : queues_) q->close();
    for (auto& t : workers_) t.join();
    while (net::IdleNode* n = idle_.expired(net::Clock::time_point::max())) close(static_cast<Conn*>(n));
    return 0;
  }

 private:
  void dispatch(loop::Key key) {
    if (key == kAcceptKey) return on_accept();
    if (key == kSweepKey) return on_sweep();
    auto* c = reinterpret_cast<Conn*>(key & ~kCmdMask);
    switch (static_cast<Cmd>(key & kCmdMask)) {
      case kReady:
        c->busy = true;
        pick_queue().push(c);
        return;
      case kWatchRead:
      case kWatchWrite:
        c->busy = false;
        if (c->session.take_progress()) {
          c->timed_out = false;
          idle_.touch(*c, net::Clock::now());
        } else if (c->timed_out) {
          return close(c);
        }
        c->writing = (key & kCmdMask) == kWatchWrite;
        return arm(c);
      case kClose:
        return close(c);
    }
  }

  // Worker thread: pop, step, send the command back. Holds the GVL except while blocked.
  void work(Queue& q) {
    net::IoScratch scratch;
    gvl_.lock();
    Conn* c = nullptr;
    while (q.pop(c, [this] { gvl_.unlock(); }, [this] { gvl_.lock(); })) {
      net::want w = c->writing ? c->session.on_writable(scratch) : c->session.on_readable(scratch);
      Cmd cmd = w == net::want::read ? kWatchRead : w == net::want::write ? kWatchWrite : kClose;
      loop_->emit(reinterpret_cast<loop::Key>(c) | cmd);
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

  // The acceptor takes a bounded batch; out of descriptors, the listener is unwatched until the
  // next sweep.
  void on_accept() {
    acceptor_.on_readable(
        [this](int fd) {
          auto* c = new Conn(fd);
          idle_.touch(*c, net::Clock::now());
          arm(c);
        },
        [this] { (void)loop_->unwatch(kAcceptKey); });
  }

  void arm(Conn* c) {
    auto interest = c->writing ? loop::Interest::writable : loop::Interest::readable;
    if (loop_->watch_io(reinterpret_cast<loop::Key>(c), c->session.fd(), interest, true) != loop::WatchStatus::ok) {
      close(c);
    }
  }

  void on_sweep() {
    auto now = net::Clock::now();
    while (net::IdleNode* n = idle_.expired(now)) {
      auto* c = static_cast<Conn*>(n);
      if (!c->busy && loop_->unwatch(reinterpret_cast<loop::Key>(c))) {
        close(c);
        continue;
      }
      // A worker owns it, or its one-shot watch has fired and its kReady key is in the current
      // batch, handed out after this sweep (deleting it here left that key dangling: ASan and TSan
      // caught it, conformance's 1 ms idle-timeout churn case). Decide when the key or the
      // worker's command comes back.
      c->timed_out = true;
      idle_.touch(*c, now);
    }
    acceptor_.on_sweep([this] { return watch_listener(); });
  }

  bool watch_listener() {
    return loop_->watch_io(kAcceptKey, listen_fd_, loop::Interest::readable, /*oneshot=*/false) == loop::WatchStatus::ok;
  }

  void close(Conn* c) {
    (void)loop_->unwatch(reinterpret_cast<loop::Key>(c));
    idle_.unlink(*c);
    net::close_connection(c->session.fd());
    delete c;
  }

  const server::Options& opt_;
  int listen_fd_;
  // Shared with the stop callback: the signal thread may still be inside loop->stop() (writing
  // its wake-up) after run() has returned, so the loop must outlive this object.
  std::shared_ptr<loop::PullLoop> loop_;
  queue::Gvl gvl_;
  net::IdleList idle_;
  std::vector<std::unique_ptr<Queue>> queues_;
  std::vector<std::thread> workers_;
  std::uint64_t rng_ = 0x9E3779B97F4A7C15ULL;
  net::Acceptor acceptor_{listen_fd_};
};

int run(const server::Options& opt, server::Control& control) {
  const loop::Backend backend = loop::parse_backend(opt.value(kBackend)).value_or(loop::Backend::libev);
  auto server = std::make_unique<Server>(opt, control.listeners().front(), std::shared_ptr<loop::PullLoop>(loop::make_pull_loop(backend)));
  return server->run(control);
}

}  // namespace

CBENCH_REGISTER_MODEL(worker_pool, "worker-pool",
                      "pull-loop thread accepts and watches; --threads N workers take ready connections from a job queue "
                      "(--queues shared|per-worker, --gvl) (Ever worker threads)",
                      server::ListenerLayout::one, &run, {}, nullptr, kOptions)
