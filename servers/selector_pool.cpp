// Model: selector-pool (nio4r's worker-thread server: "nio4r N worker threads" in the published
// table; digital-fabric/ever examples/http_server_nio4r_worker_threads.rb).
//
// The loop thread runs a libev loop (NIO::Selector) and alone touches watchers. What it does per
// readiness event, as the example's select block does:
//   listener     accept a batch (net::Acceptor, as every polling model: at most
//                net::kMaxAcceptsPerEvent) and register a level-triggered monitor for each;
//   user pipe    read ONE byte, then drain the whole directive queue: for [:monitor, c, e] close
//                c's monitor and register a new one (ev_io_stop/set/start: a rearm), for
//                [:close, c] close it;
//   connection   push it onto the shared job queue, and LEAVE ITS MONITOR ARMED (--rearm level,
//                the original). Each later round that finds the fd still unread pushes the same
//                connection again: a duplicate dispatch (bounded by --dispatch, below).
// --threads N workers pop a connection, read (16 KiB), parse, answer and write (one NbSession
// step), push a directive ([:monitor, c, :r|:w] or [:close, c]) on the directive queue and write
// one byte to the user pipe. A worker that finds nothing to read (EAGAIN: the data went to the
// other dispatch) sends [:monitor, c, :r] again, as the Ruby worker's :wait_readable branch does.
//
// Duplicate dispatch never corrupts a connection: each connection has an owner flag (an atomic
// bool taken with compare-exchange). A worker that cannot take it (another worker is running
// that connection) does not touch the socket or the session; it counts the collision
// (duplicate_dispatches counts every push of a connection whose earlier dispatch has not come
// back; the collisions are a subset) and sends a directive all the same, as the Ruby worker
// would have after its empty read. The loop counts outstanding dispatches per connection
// (`in_flight`: +1 per push, -1 per directive; every job yields exactly one directive), frees a
// closed connection only when it reaches 0 (so no job holds a dangling pointer), and applies a
// directive's interest only if it is newer than the last applied one (`step`, bumped by each
// owner), because two workers' directives may arrive out of order.
//
// How the two halves meet, two options. The original's mechanism is each option's first value, as
// the Ruby replica (servers/ruby/nio4r_workers.rb) counts it: 9.5-209 jobs pushed per answered
// request and a wake-up write that waits; the scenarios that reproduce the published nio4r rows
// name both. The defaults bound it, because the original, run as it is, stops serving after
// clients close with requests in flight, and every model's default must pass the conformance
// gate, the soak and every scenario:
// --dispatch unbounded (the original): every readiness of a still-registered monitor is pushed as
//   a job, however many dispatches of that connection are in flight, so a connection whose first
//   job waits in a long queue is pushed again every round: the queue feeds itself, and once it
//   is long enough the readable connections (and with them the queue) never drain. nio4r's own
//   example does this: Ruby 3.1.2 with nio4r 2.5.8 and one worker under wrk -c4 grew its job
//   queue past 300,000 jobs in 3 s, and under -c50 right after served nothing while the queue
//   passed 3 million. Here, without and with --gvl, it passes the conformance gate on an idle
//   machine and fails its slowloris and idle-timeout cases (the server stops answering for good)
//   on a loaded one or under a sanitizer (results/diagnostics/20261207T005500Z-selector-pool-gate).
//   Counted: dispatches, duplicate_dispatches.
// --dispatch capped (default; the first C++ stand-in): at most kCappedInFlightPerConn dispatches
//   of a connection in flight; readiness beyond that is counted (suppressed_duplicates), not
//   pushed, so suppressed_duplicates per request says how often the original would have pushed.
// --wakeup-write blocking (the original's `$o << '.'`: Ruby 3 pipes are non-blocking underneath
//   and IO#write waits for writability and retries, the GVL released): a worker that finds the
//   user pipe full waits until it has room. The loop reads one byte per round, and a pipe frees
//   room a page (4096 bytes) at a time, so once full, workers serve about one job per loop round
//   while the loop pushes one per readable connection per round: with --dispatch unbounded the
//   server stops answering under the gate's load cases (with or without --gvl).
//   Why it cannot deadlock all the same: a worker writes its byte after it has pushed its
//   directive and released the connection and the GVL, and the loop never waits for a worker:
//   its job push never blocks (the queue grows), the GVL is never held by a writer, and a full
//   pipe is readable, so the loop's next poll returns at once and its `$i.read(1)` drains the
//   pipe towards the next free page. At stop the loop stops reading; a waiting writer polls with
//   a timeout and gives up once the loop has finished (run() applies every directive after the
//   join, so the byte is not needed then).
// --wakeup-write drop (default): a worker that finds the pipe full drops its byte (a full pipe is
//   readable, so the loop wakes anyway and drains every directive). Differs from the original
//   only once the pipe is full. Both count the full pipe (pipe_full_writes).
// --rearm oneshot: the loop stops the monitor before it pushes the job (Ever's design: one-shot
// watch), and the directive starts it again; no duplicate can happen. Tests the explanation.
// --gvl: Ruby's global VM lock, emulated by backends/queue/gvl.h (shared with worker-pool, which
// says what it models and leaves out), of the kind --gvl-emulation names:
//   ruby31 (default): Ruby 3.1's rules: a release wakes a waiter without handing over (the
//     releaser may take it back first), released around blocking regions only, 100 ms timer.
//   fifo: the second emulation: hand-off to the longest waiter at every release.
//   mutex: the unfair std::mutex of the first emulation, held through a worker's read and write.
// The loop thread holds it while it runs the select block (accepts, pushes jobs, drains
// directives; a check point after each event) and releases it around the poll (libev's
// release/acquire callbacks, as nio4r's libev calls epoll_wait through
// rb_thread_call_without_gvl, then a check point) and around the one-byte `$i.read(1)` (IO#read's
// read(2) is a blocking region). Workers hold it while they run a job (a check point before each)
// and release it while blocked on the empty job queue (Queue#pop), around the test delay (a
// sleep), around the one-byte pipe write and its wait on a full pipe (IO#write is a blocking
// region) and, with ruby31, around the session's read (read_nonblock) but not its write
// (write_nonblock calls write(2) holding the lock); fifo releases around both. The loop's accept
// is not bracketed (net::Acceptor is shared; Ruby's accept releases the lock). What it leaves out: the
// interpreter's own CPU cost per request, and check points inside a handler (/spin holds the
// lock throughout). If the published collapse needs any of those, this emulation will not show
// it, and the report must say so.
// nio4r's selector mutex: NIO::Selector#select, #register and #deregister synchronise on one
// re-entrant Mutex. Only the loop thread touches the selector, and the directive drain (register,
// close) runs inside the select block (re-entrant: no second lock), so it is never contended. The
// loop thread takes it once for its whole life, before the GVL, so the two are always taken in
// one order (the GVL is retaken inside ev_run, after the poll); taking it again each round would
// add only an uncontended lock and unlock per round.
// --threads: number of workers (the loop thread is extra). /sleep: occupies one worker (with
// --gvl it holds the lock throughout, where Ruby's sleep would release it: the handler is shared
// C++ with no blocking region); /spin: one worker's CPU time. Idle timeout: a sweep four times a
// second closes connections idle longer than
// --idle-timeout-ms (a connection a worker holds is closed when its directive comes back without
// progress). EMFILE: the acceptor stops the listener's watcher until the next sweep.
// Stop: ev_async breaks the loop; the job queue is closed and what is still queued is dropped,
// workers finish the job they hold and exit, the loop applies what they sent, and every
// connection is closed.
// --test-worker-delay-us (tests only): a worker sleeps this long after it pops a first (not
// duplicate) dispatch and before it takes the connection, so the fd stays readable and the
// level-triggered loop dispatches it again meanwhile (duplicates run at once, so the delay is
// paid once per request, not once per duplicate).
// Counters (which mechanism occurred; the harness divides them by the requests served): dispatches
// (jobs pushed), duplicate_dispatches (pushes of a connection already in flight: the repeated
// level-triggered readiness), suppressed_duplicates (capped only), owner_collisions, empty_reads
// (a worker's read found nothing: EAGAIN, from the session), wakeups (pipe bytes read),
// pipe_full_writes, rearms, poll_rounds, accepts (net::Acceptor), closes (when the fd is closed,
// net::close_connection), gvl_timeslice_yields.
// The libev scaffolding (loop, the acceptor, sweep timer, stop, monitor re-registration)
// is backends/selector/ev_selector.h, shared with selector; this file is the worker model only.
#include <ev.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "backends/selector/ev_selector.h"
#include "backends/selector/run_model.h"
#include "backends/net/idle_list.h"
#include "backends/net/nb_session.h"
#include "backends/net/socket.h"
#include "backends/queue/gvl.h"
#include "backends/queue/job_queue.h"
#include "backends/stats/counters.h"
#include "backends/server/model.h"
#include "backends/server/threads.h"

namespace {

using namespace cb;
using stats::Counter;

// --dispatch capped: dispatches of one connection in flight at once (the first and one
// duplicate): enough to keep the duplicate-dispatch race (and its owner collisions) alive, while
// the queue holds at most two jobs per connection.
constexpr int kCappedInFlightPerConn = 2;

// How long a worker waiting to write its wake-up byte sleeps before it checks whether the loop
// has finished (stop only; while the loop runs, a full pipe drains one byte per round).
constexpr int kPipeWaitSliceMs = 50;

struct Conn : net::IdleNode {
  explicit Conn(int fd) : session(fd) {}
  ev_io watcher{};
  net::NbSession session;
  // Shared between workers:
  std::atomic<bool> owned{false};  // a worker is running the session; taken with compare-exchange
  // Owner-only (read and written only by the worker holding `owned`):
  bool finished = false;           // the session returned want::close: nobody touches it again
  std::uint32_t step = 0;          // bumped by every owner; orders directives
  // Loop-only:
  int in_flight = 0;               // dispatches pushed whose directive has not come back
  std::uint32_t applied_step = 0;  // newest step whose interest the loop applied
  bool watching_write = false;     // current monitor interest
  bool armed = false;              // the monitor is started
  bool closing = false;            // closed by a directive or the sweep: freed when in_flight == 0
  bool timed_out = false;          // idle deadline passed while in flight: close unless progress
};

struct Job {
  Conn* conn = nullptr;
  bool writable = false;   // which readiness fired: on_writable or on_readable
  bool duplicate = false;  // an earlier dispatch of the connection was still in flight
};

constexpr server::ModelOption kGvl{"--gvl", server::ArgKind::flag, "", "", 0, 0,
                                   "emulate Ruby's global VM lock (held except while blocked)"};
constexpr server::ModelOption kRearm{"--rearm", server::ArgKind::word, "level", "level|oneshot", 0, 0,
                                     "a dispatched connection's monitor left armed (nio4r, default) or disarmed"};
constexpr server::ModelOption kTestWorkerDelayUs{
    "--test-worker-delay-us", server::ArgKind::integer, "0", "", 0, 1'000'000,
    "tests only: a worker sleeps this long before it reads a dispatched connection (forces duplicate dispatch)"};
constexpr server::ModelOption kGvlEmulation{"--gvl-emulation", server::ArgKind::word, "ruby31", "ruby31|fifo|mutex", 0, 0,
                                            "with --gvl: Ruby 3.1's GVL rules (default), the FIFO hand-off at every "
                                            "release (second emulation) or an unfair mutex held through a job (first)"};
constexpr server::ModelOption kDispatch{"--dispatch", server::ArgKind::word, "capped", "unbounded|capped", 0, 0,
                                        "every level-triggered readiness pushed as a job (nio4r's; may stop serving "
                                        "under load), or at most 2 dispatches of a connection in flight (default)"};
constexpr server::ModelOption kWakeupWrite{"--wakeup-write", server::ArgKind::word, "drop", "blocking|drop", 0, 0,
                                           "a worker's wake-up byte on a full pipe: waited for as Ruby's IO#write does "
                                           "(nio4r's) or dropped (default)"};
constexpr server::ModelOption kOptions[] = {kGvl, kGvlEmulation, kRearm, kDispatch, kWakeupWrite, kTestWorkerDelayUs};

enum class Directive : std::uint8_t { monitor_read, monitor_write, close, none };

struct DirectiveMsg {
  Conn* conn = nullptr;
  Directive what = Directive::none;  // none: a collision (the worker could not take the connection)
  std::uint32_t step = 0;
  bool progress = false;             // requests completed in this step (renews the idle deadline)
};

class Server {
 public:
  Server(const server::Options& opt, int listen_fd)
      : opt_(opt), oneshot_(opt.value(kRearm) == "oneshot"), capped_(opt.value(kDispatch) == "capped"),
        drop_wakeup_(opt.value(kWakeupWrite) == "drop"),
        worker_delay_(opt.int_value(kTestWorkerDelayUs)), selector_(*this, listen_fd),
        gvl_(opt.is_set(kGvl), queue::Gvl::kind_named(opt.value(kGvlEmulation)).value_or(queue::Gvl::Kind::ruby31)),
        idle_(std::chrono::milliseconds(opt.idle_timeout_ms)) {}

  ~Server() {
    if (pipe_[0] >= 0) ::close(pipe_[0]);
    if (pipe_[1] >= 0) ::close(pipe_[1]);
  }

  int run(server::Control& control, const std::shared_ptr<Server>& self) {
    // Both ends non-blocking, as Ruby 3's IO.pipe: a blocking write is wake_loop's wait and retry.
    if (!selector_.start() || pipe2(pipe_, O_NONBLOCK | O_CLOEXEC) != 0) {
      std::fprintf(stderr, "cbench-server: selector-pool: unable to start the libev loop\n");
      return 1;
    }
    ev_io_init(&pipe_w_, &Server::on_pipe_cb, pipe_[0], EV_READ);
    ev_io_start(selector_.loop(), &pipe_w_);
    // Ruby releases the GVL around libev's blocking poll only.
    ev_set_loop_release_cb(
        selector_.loop(), [](struct ev_loop* l) noexcept { of(l).gvl_.unlock(); },
        [](struct ev_loop* l) noexcept {
          of(l).gvl_.lock();
          of(l).gvl_.check_interrupts();  // rb_thread_call_without_gvl ends with a check point
        });
    control.on_stop([self] { self->selector_.stop(); });

    int status = server::run_on_threads(
        "selector-pool", opt_.threads + 1,
        [this](int i) {
          if (i == 0) return select_loop();
          work();
        },
        [this] {
          jobs_.close();
          selector_.stop();
        });

    // Every job produced a directive; apply them (this frees connections closed in flight).
    DirectiveMsg d;
    while (directives_.try_pop(d)) apply(d);
    while (net::IdleNode* n = idle_.expired(net::Clock::time_point::max())) close(static_cast<Conn*>(n));
    return status;
  }

  // -- selector::EvSelector's model contract ---------------------------------------------------
  // `server.accept` (EvSelector's acceptor), then `conn.monitor(:r)`.
  void on_accepted(int fd) {
    auto* c = new Conn(fd);
    c->watcher.data = c;
    ev_io_init(&c->watcher, &Server::on_conn_cb, fd, EV_READ);
    ev_io_start(selector_.loop(), &c->watcher);
    c->armed = true;
    idle_.touch(*c, net::Clock::now());
  }

  void on_sweep(net::Clock::time_point now) {
    while (net::IdleNode* n = idle_.expired(now)) {
      auto* c = static_cast<Conn*>(n);
      if (c->in_flight == 0) {
        close(c);
        continue;
      }
      c->timed_out = true;  // decided when its last directive comes back
      idle_.touch(*c, now);
    }
  }

  void on_stop_requested() { stop_ = true; }

 private:
  static Server& of(struct ev_loop* l) { return selector::EvSelector<Server>::model_of(l); }
  static void on_pipe_cb(struct ev_loop* l, ev_io*, int) { of(l).on_pipe(); }
  static void on_conn_cb(struct ev_loop* l, ev_io* w, int revents) {
    of(l).on_ready(static_cast<Conn*>(w->data), (revents & EV_WRITE) != 0);
  }

  // The loop thread: `loop { selector.select { ... } }`, under the selector mutex and the GVL.
  void select_loop() {
    {
      std::lock_guard selector_lock(selector_mu_);
      gvl_.lock();
      while (!stop_) ev_run(selector_.loop(), EVRUN_ONCE);
      gvl_.unlock();
    }
    loop_done_.store(true, std::memory_order_release);  // nobody reads the pipe from here on
    jobs_.close();  // workers finish the jobs they hold, then return
    // Jobs still queued are not served (stopping: their connections are about to close). With
    // --dispatch unbounded the queue may hold millions of duplicates; dropping them here keeps
    // the stop prompt. Each dropped job counts as come back, as its directive would have.
    Job job;
    while (jobs_.try_pop(job)) {
      Conn* c = job.conn;
      if (--c->in_flight == 0 && c->closing) free_conn(c);
    }
  }

  // `$job_queue << monitor.value`, leaving the monitor armed (level) or stopping it first (oneshot).
  void on_ready(Conn* c, bool writable) {
    gvl_.check_interrupts();
    if (capped_ && c->in_flight >= kCappedInFlightPerConn) {
      stats::count(Counter::suppressed_duplicates);
      return;
    }
    stats::count(Counter::dispatches);
    bool duplicate = c->in_flight > 0;
    if (duplicate) stats::count(Counter::duplicate_dispatches);
    if (oneshot_) {
      ev_io_stop(selector_.loop(), &c->watcher);
      c->armed = false;
    }
    ++c->in_flight;
    if (!jobs_.push(Job{c, writable, duplicate})) --c->in_flight;  // closed: stopping
  }

  // `$i.read(1)`, then drain the directive queue.
  void on_pipe() {
    gvl_.check_interrupts();
    char byte;
    ssize_t n = 0;
    gvl_.blocking_region([&] { n = ::read(pipe_[0], &byte, 1); });  // IO#read: a blocking region
    if (n == 1) stats::count(Counter::wakeups);
    DirectiveMsg d;
    while (directives_.try_pop(d)) apply(d);
  }

  void apply(const DirectiveMsg& d) {
    Conn* c = d.conn;
    --c->in_flight;
    if (c->closing) {
      if (c->in_flight == 0) free_conn(c);
      return;
    }
    if (d.progress) {
      c->timed_out = false;
      idle_.touch(*c, net::Clock::now());
    }
    if (d.what == Directive::close || (c->timed_out && c->in_flight == 0)) return close(c);
    bool fresher = d.what != Directive::none && d.step > c->applied_step;
    if (fresher) {
      c->applied_step = d.step;
      c->watching_write = d.what == Directive::monitor_write;
    }
    // [:monitor, c, e]: close the monitor and register a new one. A collision sends one too (the
    // Ruby worker's empty read does); in oneshot mode only the newest directive re-arms, and only
    // once nothing else is in flight, so no second dispatch can start.
    if (oneshot_ && c->in_flight > 0) return;
    monitor(c);
  }

  void monitor(Conn* c) {
    selector_.monitor(c->watcher, c->session.fd(), c->watching_write ? EV_WRITE : EV_READ);
    c->armed = true;
  }

  // A worker: `while (job = $job_queue.shift); handle_connection(job); end`.
  void work() {
    net::IoScratch scratch;
    net::BlockingRegion* around = gvl_.enabled() ? &gvl_ : nullptr;  // the session's read and write
    gvl_.lock();
    Job job;
    // Queue#pop: an empty queue releases the lock while it sleeps (native_sleep) and checks for
    // interrupts once it has it back.
    while (jobs_.pop(job, [this] { gvl_.unlock(); }, [this] {
      gvl_.lock();
      gvl_.check_interrupts();
    })) {
      gvl_.check_interrupts();  // the worker's Ruby code between jobs (method calls check)
      Conn* c = job.conn;
      if (worker_delay_.count() > 0 && !job.duplicate) {
        gvl_.blocking_region([this] { std::this_thread::sleep_for(worker_delay_); });
      }
      DirectiveMsg d{c, Directive::none, 0, false};
      bool expected = false;
      if (c->owned.compare_exchange_strong(expected, true, std::memory_order_acquire)) {
        if (c->finished) {
          d.what = Directive::close;
        } else {
          net::want w = job.writable ? c->session.on_writable(scratch, around)
                                     : c->session.on_readable(scratch, around);
          d.what = w == net::want::read ? Directive::monitor_read
                   : w == net::want::write ? Directive::monitor_write
                                           : Directive::close;
          c->finished = w == net::want::close;
          d.progress = c->session.take_progress();
        }
        d.step = ++c->step;
        c->owned.store(false, std::memory_order_release);
      } else {
        stats::count(Counter::owner_collisions);
      }
      directives_.push(d);
      gvl_.blocking_region([this] { wake_loop(); });  // `$o << '.'`: IO#write runs in a blocking region
    }
    gvl_.unlock();
  }

  // `$o << '.'`, without the GVL. --wakeup-write blocking: waits while the pipe is full (the
  // contract at the top of this file says why that cannot deadlock); drop: a full pipe drops it.
  void wake_loop() {
    bool counted = false;
    for (;;) {
      if (::write(pipe_[1], ".", 1) == 1) return;
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return;  // no reader left: nothing to wake
      if (!counted) stats::count(Counter::pipe_full_writes);
      counted = true;
      if (drop_wakeup_ || loop_done_.load(std::memory_order_acquire)) return;
      pollfd p{pipe_[1], POLLOUT, 0};
      ::poll(&p, 1, kPipeWaitSliceMs);
    }
  }

  // `conn.close`: the monitor goes now; the memory (and fd) once no job refers to it.
  void close(Conn* c) {
    ev_io_stop(selector_.loop(), &c->watcher);
    c->armed = false;
    c->closing = true;
    idle_.unlink(*c);
    if (c->in_flight == 0) free_conn(c);
  }

  void free_conn(Conn* c) {
    net::close_connection(c->session.fd());
    delete c;
  }

  const server::Options& opt_;
  const bool oneshot_;                        // --rearm oneshot: disarm a monitor before dispatch
  const bool capped_;                         // --dispatch capped: at most 2 dispatches in flight (else unbounded)
  const bool drop_wakeup_;                    // --wakeup-write drop: a full pipe drops the byte
  const std::chrono::microseconds worker_delay_;  // --test-worker-delay-us
  selector::EvSelector<Server> selector_;
  int pipe_[2] = {-1, -1};  // the user pipe: workers write one byte per directive
  ev_io pipe_w_{};
  bool stop_ = false;  // loop thread only
  std::atomic<bool> loop_done_{false};  // the select loop has returned: the pipe is no longer read
  queue::Gvl gvl_;
  std::mutex selector_mu_;  // NIO::Selector's @lock
  queue::JobQueue<Job> jobs_;
  queue::JobQueue<DirectiveMsg> directives_;
  net::IdleList idle_;  // open connections (not closing ones), oldest deadline first
};

}  // namespace

CBENCH_REGISTER_MODEL(selector_pool, "selector-pool",
                      "libev select loop accepts and pushes ready connections (monitor left armed: duplicate dispatch) "
                      "to --threads N workers, directives back over a queue and a one-byte pipe "
                      "(--gvl, --gvl-emulation ruby31|fifo|mutex, --rearm level|oneshot, --dispatch unbounded|capped, "
                      "--wakeup-write blocking|drop) "
                      "(nio4r worker threads)",
                      server::ListenerLayout::one, &selector::run_on_listener<Server>, {}, nullptr, kOptions)
