// Model: libuv (Node.js's event loop, used directly).
//
// One uv_loop_t per thread, each with its own listening socket on the same port (SO_REUSEPORT,
// one listener per thread from main), so the loops share nothing, as Node's cluster module does
// with processes. Within a loop everything is a libuv handle with callbacks:
//   - the listener is a uv_tcp_t (uv_tcp_open on a dup of main's listener); on_connection
//     accepts into a new Connection and starts reading;
//   - reads go into one buffer per loop: on_alloc hands the same kReadBufferBytes buffer to every
//     read, which is safe because libuv calls on_read before it allocates again, so reading
//     allocates nothing per read and an idle connection holds no read buffer;
//   - on_read hands the bytes to the connection's http::Pump (backends/http/pump.h, shared by
//     every model), which stages the responses in the loop's one staging buffer;
//     uv_try_write sends what the socket takes at once, and if some is left, uv_write sends the
//     rest from the pump's output (which the pump then keeps, untouched until on_write) while
//     reading is stopped (backpressure);
//   - a client that pipelines without reading can make a connection hold at most the pump's
//     output high-water mark plus one response, and one read's worth of unparsed input: the pump
//     parses it as on_write reports the output consumed, before reading again.
//
// --threads N: N loops on N threads, each on its own SO_REUSEPORT listener; the kernel assigns
//   each connection to one loop for its lifetime.
// /sleep: blocks its loop's thread, stalling every connection on that loop (about 1/N of them);
//   libuv would put blocking work on its thread pool (uv_queue_work), but the shared handler is
//   called inline, as Node calls a synchronous handler.
// /spin: the same for CPU: the loop serves nobody else until it returns.
// Idle timeout: a uv_timer per loop sweeps a net::IdleList every kTick; connections are touched
//   when accepted and when a request completes, so one that trickles a partial request expires.
// EMFILE: libuv's own answer first (uv__emfile_trick: it releases a reserved descriptor, accepts
//   and closes the waiting connections); if even that fails, on_connection gets an error, and the
//   listener handle is closed and reopened on the next tick, so the loop neither spins nor dies.
//   libuv accepts, not net::Acceptor (uv__server_io: its own batch, bounded by the backlog):
//   on_connection counts accepts and close() closes (net::count_accepted, net::count_closed).
// Stop: Control::on_stop calls Loop::stop, a uv_async_send on every loop; on_stop_async closes
//   the listener, the timer, every connection and the async handle itself, so uv_run returns
//   once the close callbacks have run; the threads end and are joined.
//
// Reading order: Loop::run is the whole life of a loop on its thread (start its handles, serve
// until stopped, close the loop); the callbacks follow in the order a connection meets them.
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <string_view>

#include "backends/http/limits.h"
#include "backends/http/pump.h"
#include "backends/net/accept.h"
#include "backends/net/idle_list.h"
#include "backends/server/model.h"
#include "backends/server/threads.h"

namespace {

using namespace cb;

// Idle sweeps and listener retries (net::kSweepPeriod, as every loop-based model).
constexpr std::uint64_t kTickMs = std::chrono::milliseconds(net::kSweepPeriod).count();

class Loop;

// One client. Lives from on_connection until the close callback of its handle.
struct Connection : net::IdleNode {
  explicit Connection(Loop& l) : loop(l) {}

  Loop& loop;
  uv_tcp_t handle{};  // handle.data points back here
  uv_write_t write_req{};
  http::Pump pump;
  bool reading = false;  // uv_read_start is in force (never while a uv_write is in flight)
  bool closing = false;  // uv_close was called; callbacks still to come are ignored
};

class Loop {
 public:
  Loop(int listen_fd, int backlog, std::chrono::milliseconds idle_timeout)
      : listen_fd_(listen_fd), backlog_(backlog), idle_(idle_timeout) {}
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  bool ok() const { return true; }  // everything that can fail happens in run(), on its thread

  // The whole life of this loop, on the calling thread: start the handles, serve until stop(),
  // close. Returns 0 after a stop, 1 if the loop could not start (printed with its context).
  int run() {
    if (int err = uv_loop_init(&loop_); err != 0) return fail("uv_loop_init", err);
    loop_.data = this;
    int err = start();
    if (err != 0) {
      std::fprintf(stderr, "cbench-server: libuv: unable to listen: %s\n", uv_strerror(err));
      on_stop_async(&stop_);  // closes what start() opened; uv_run below runs the callbacks
    }
    uv_run(&loop_, UV_RUN_DEFAULT);  // serves until every handle is closed
    uv_loop_close(&loop_);
    return err == 0 ? 0 : 1;
  }

  // Makes run() return soon. Thread-safe, non-blocking, idempotent, and safe before the loop has
  // started and after it has ended: uv_async_send is only called on an initialised, open handle.
  void stop() {
    std::lock_guard lock(stop_mu_);
    stop_requested_ = true;
    if (async_ready_) uv_async_send(&stop_);
    async_ready_ = false;  // a second uv_async_send after the handle closes would abort
  }

 private:
  static int fail(const char* what, int err) {
    std::fprintf(stderr, "cbench-server: libuv: %s: %s\n", what, uv_strerror(err));
    return 1;
  }

  // Opens the stop handle, the sweep timer and the listener. Returns 0 or a libuv error; the
  // stop handle and the timer are always open afterwards (on_stop_async closes them).
  int start() {
    uv_async_init(&loop_, &stop_, on_stop_async);  // fails only for a bad loop
    uv_timer_init(&loop_, &tick_);
    uv_timer_start(&tick_, on_tick, kTickMs, kTickMs);
    {
      std::lock_guard lock(stop_mu_);
      if (stop_requested_) uv_async_send(&stop_);  // stopped before we could be woken
      else async_ready_ = true;
    }
    return listen();
  }

  // Opens the listener handle on a dup of main's listener (libuv closes the descriptor it is
  // given; main closes its own). Returns 0 or a libuv error.
  int listen() {
    int fd = ::dup(listen_fd_);
    if (fd < 0) return uv_translate_sys_error(errno);  // listener_ stays closed: retried next tick
    uv_tcp_init(&loop_, &listener_);
    listener_.data = this;
    listener_state_ = Listener::open;
    int err = uv_tcp_open(&listener_, fd);
    if (err != 0) ::close(fd);
    if (err == 0) err = uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), backlog_, on_connection);
    if (err != 0) close_listener();
    return err;
  }

  // --- a connection's life, in the order it meets the callbacks ---

  static void on_connection(uv_stream_t* server, int status) {
    Loop& self = *static_cast<Loop*>(server->data);
    if (status < 0) {
      // Out of descriptors even after libuv's reserve trick (or another accept failure libuv
      // would retry at once): stop listening until the next tick instead of spinning.
      self.close_listener();
      return;
    }
    auto* c = new Connection(self);
    uv_tcp_init(&self.loop_, &c->handle);
    c->handle.data = c;
    if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&c->handle)) != 0) {
      c->closing = true;
      uv_close(reinterpret_cast<uv_handle_t*>(&c->handle), on_closed);
      return;
    }
    net::count_accepted();
    uv_tcp_nodelay(&c->handle, 1);
    self.idle_.touch(*c, net::Clock::now());
    self.start_reading(*c);
  }

  // Every read of this loop goes into its one read buffer: libuv calls on_read before it
  // allocates again, so reading allocates nothing and an idle connection holds no read buffer.
  static void on_alloc(uv_handle_t* h, std::size_t /*suggested*/, uv_buf_t* buf) {
    Loop& self = static_cast<Connection*>(h->data)->loop;
    *buf = uv_buf_init(self.scratch_.read_buf, sizeof self.scratch_.read_buf);
  }

  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
    auto& c = *static_cast<Connection*>(stream->data);
    if (nread == 0) return;  // EAGAIN
    if (nread < 0) {         // UV_EOF or an error
      c.loop.close(c);
      return;
    }
    c.pump.feed({buf->base, static_cast<std::size_t>(nread)}, c.loop.scratch_.out);
    c.loop.flush(c);
  }

  // Sends the pump's output: uv_try_write for what the socket takes now; if some is left, stops
  // reading and hands the rest to uv_write (on_write continues). Consuming output lets the pump
  // parse what its high-water mark held back, so this loops until the output is empty.
  void flush(Connection& c) {
    auto* stream = reinterpret_cast<uv_stream_t*>(&c.handle);
    for (std::string_view out = c.pump.output(); !out.empty(); out = c.pump.output()) {
      uv_buf_t buf = uv_buf_init(const_cast<char*>(out.data()), static_cast<unsigned>(out.size()));
      int n = uv_try_write(stream, &buf, 1);
      if (n == UV_EAGAIN) n = 0;
      if (n < 0) return close(c);
      if (static_cast<std::size_t>(n) < out.size()) {
        if (n > 0) c.pump.consumed(static_cast<std::size_t>(n));
        return write_rest(c);
      }
      c.pump.consumed(out.size());
    }
    if (c.pump.take_progress()) idle_.touch(c, net::Clock::now());
    c.pump.lend_back(scratch_.out);
    if (c.pump.state() == http::pump_state::close) return close(c);
    start_reading(c);
  }

  // The socket is full: stop reading (backpressure) and let uv_write send the rest of the output,
  // which the pump keeps unchanged until on_write reports it consumed.
  void write_rest(Connection& c) {
    if (c.pump.take_progress()) idle_.touch(c, net::Clock::now());
    auto* stream = reinterpret_cast<uv_stream_t*>(&c.handle);
    if (c.reading) uv_read_stop(stream);
    c.reading = false;
    std::string_view out = c.pump.output();
    uv_buf_t buf = uv_buf_init(const_cast<char*>(out.data()), static_cast<unsigned>(out.size()));
    c.write_req.data = &c;
    if (uv_write(&c.write_req, stream, &buf, 1, on_write) != 0) close(c);
  }

  static void on_write(uv_write_t* req, int status) {
    auto& c = *static_cast<Connection*>(req->data);
    if (c.closing) return;  // UV_ECANCELED from uv_close
    if (status < 0) return c.loop.close(c);
    c.pump.consumed(c.pump.output().size());  // uv_write completes only when all of it is sent
    c.loop.flush(c);
  }

  void start_reading(Connection& c) {
    if (c.reading) return;
    if (uv_read_start(reinterpret_cast<uv_stream_t*>(&c.handle), on_alloc, on_read) != 0) return close(c);
    c.reading = true;
  }

  // Starts closing c; on_closed frees it. c stays valid until then, so callers may return normally.
  void close(Connection& c) {
    if (c.closing) return;
    c.closing = true;
    idle_.unlink(c);
    net::count_closed();  // once per accepted connection (closing is set once)
    uv_close(reinterpret_cast<uv_handle_t*>(&c.handle), on_closed);
  }

  static void on_closed(uv_handle_t* h) { delete static_cast<Connection*>(h->data); }

  // --- the loop's own handles ---

  static void on_tick(uv_timer_t* t) {
    Loop& self = *static_cast<Loop*>(t->loop->data);
    auto now = net::Clock::now();
    while (net::IdleNode* n = self.idle_.expired(now)) self.close(static_cast<Connection&>(*n));
    if (self.listener_state_ == Listener::closed) self.listen();  // may fail again: next tick
  }

  void close_listener() {
    if (listener_state_ != Listener::open) return;
    listener_state_ = Listener::closing;
    uv_close(reinterpret_cast<uv_handle_t*>(&listener_), on_listener_closed);
  }

  static void on_listener_closed(uv_handle_t* h) { static_cast<Loop*>(h->data)->listener_state_ = Listener::closed; }

  // Closes every handle (the timer first, so no tick reopens the listener); uv_run returns once
  // their close callbacks have run.
  static void on_stop_async(uv_async_t* a) {
    Loop& self = *static_cast<Loop*>(a->loop->data);
    uv_close(reinterpret_cast<uv_handle_t*>(&self.tick_), nullptr);
    self.close_listener();
    while (net::IdleNode* n = self.idle_.expired(net::Clock::time_point::max()))
      self.close(static_cast<Connection&>(*n));
    {
      std::lock_guard lock(self.stop_mu_);
      self.async_ready_ = false;  // closing: stop() must not touch it again
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&self.stop_), nullptr);
  }

  int listen_fd_;  // main's listener (not owned)
  int backlog_;    // uv_listen calls listen(2) again: keep main's backlog
  uv_loop_t loop_{};
  uv_tcp_t listener_{};
  uv_timer_t tick_{};
  uv_async_t stop_{};
  net::IdleList idle_;        // every open connection, oldest deadline first
  http::PumpScratch scratch_;  // the one read buffer (see on_alloc) and response staging of this loop
  // The listener handle's state: closed (before start(), or paused after an accept failure, until
  // a tick reopens it), open, or closing (uv_close called, its callback not yet run).
  enum class Listener { closed, open, closing } listener_state_ = Listener::closed;
  std::mutex stop_mu_;          // orders stop() with the stop handle's opening and closing
  bool stop_requested_ = false;  // under stop_mu_
  bool async_ready_ = false;     // under stop_mu_: stop_ is open and may be sent to
};

int run(const server::Options& opt, server::Control& control) {
  return server::run_loop_per_listener<Loop>("libuv", control, opt.listen_backlog,
                                             std::chrono::milliseconds(opt.idle_timeout_ms));
}

}  // namespace

CBENCH_REGISTER_MODEL(libuv, "libuv",
                      "libuv loops (uv_tcp, per-loop read buffer, uv_try_write then uv_write), one per thread on SO_REUSEPORT listeners",
                      server::ListenerLayout::per_thread, &run)
