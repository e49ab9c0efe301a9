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
//   - on_read feeds the shared Codec, which appends responses to the connection's `out`;
//     uv_try_write sends what the socket takes at once, and if some is left, uv_write sends the
//     rest from `out` (left untouched until on_write) while reading is stopped (backpressure);
//   - a client that pipelines without reading can make a connection hold at most the codec's
//     output high-water mark plus one response in `out`, and one read's worth of unparsed input
//     in `backlog` (feed_status::output_full): on_write parses the backlog before reading again.
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
// Stop: Control::on_stop calls uv_async_send on every loop; on_stop_async closes the listener,
//   the timer, every connection and the async handle itself, so uv_run returns once the close
//   callbacks have run; run() joins the threads.
#include <unistd.h>
#include <uv.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include "backends/http/codec.h"
#include "backends/http/limits.h"
#include "backends/net/idle_list.h"
#include "backends/server/model.h"
#include "backends/server/threads.h"

namespace {

using namespace cb;

// Idle sweeps and listener retries run this often. Coarse on purpose: a wake-up 4 times a second
// costs nothing measurable, and timeouts are seconds long.
constexpr std::uint64_t kTickMs = 250;

class Loop;

// One client. Lives from on_connection until the close callback of its handle.
struct Connection : net::IdleNode {
  explicit Connection(Loop& l) : loop(l) {}

  Loop& loop;
  uv_tcp_t handle{};      // handle.data points back here
  uv_write_t write_req{};
  http::Codec codec;
  std::string out;        // responses not yet written; while writing, the in-flight buffer
  std::string backlog;    // input held back by feed_status::output_full
  std::string held;       // the backlog being parsed (swapped with backlog, keeping both capacities)
  bool reading = false;   // uv_read_start is in force (never while a uv_write is in flight)
  bool closing = false;   // uv_close was called; callbacks still to come are ignored
};

class Loop {
 public:
  Loop(int listen_fd, int backlog, std::chrono::milliseconds idle_timeout)
      : listen_fd_(listen_fd), backlog_(backlog), idle_(idle_timeout) {}
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  ~Loop() {
    if (!ran_) {  // never run (a failed start): close the handles open() made and let them finish
      if (async_open_) on_stop_async(&stop_);
      finish();
    }
  }

  // Initialises the loop and its handles on the calling thread (run() may then run on another).
  // Returns an empty string or the failure with its context.
  std::string open() {
    int err = uv_loop_init(&loop_);
    if (err != 0) return std::string("uv_loop_init: ") + uv_strerror(err);
    loop_open_ = true;
    loop_.data = this;
    if ((err = uv_async_init(&loop_, &stop_, on_stop_async)) != 0)
      return std::string("uv_async_init: ") + uv_strerror(err);
    async_open_ = true;
    uv_timer_init(&loop_, &tick_);
    tick_open_ = true;
    uv_timer_start(&tick_, on_tick, kTickMs, kTickMs);
    if ((err = listen()) != 0) return std::string("unable to listen with libuv: ") + uv_strerror(err);
    return {};
  }

  // Runs the loop on the calling thread until the stop has closed every handle.
  void run() {
    ran_ = true;
    finish();
  }

  // Makes run() return soon. Thread-safe and non-blocking (uv_async_send, libuv's one thread-safe
  // call), and idempotent: a second uv_async_send after the loop has closed would abort.
  void stop() {
    if (!stop_sent_.exchange(true)) uv_async_send(&stop_);
  }

 private:
  void finish() {
    if (!loop_open_) return;
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
    loop_open_ = false;
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

  void close_listener() {
    if (listener_state_ != Listener::open) return;
    listener_state_ = Listener::closing;
    uv_close(reinterpret_cast<uv_handle_t*>(&listener_), on_listener_closed);
  }

  static void on_listener_closed(uv_handle_t* h) { static_cast<Loop*>(h->data)->listener_state_ = Listener::closed; }

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
    uv_tcp_nodelay(&c->handle, 1);
    self.idle_.touch(*c, net::Clock::now());
    self.start_reading(*c);
  }

  static void on_alloc(uv_handle_t* h, std::size_t /*suggested*/, uv_buf_t* buf) {
    Loop& self = static_cast<Connection*>(h->data)->loop;
    *buf = uv_buf_init(self.read_buf_, sizeof self.read_buf_);
  }

  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
    auto& c = *static_cast<Connection*>(stream->data);
    if (nread == 0) return;  // EAGAIN
    if (nread < 0) {         // UV_EOF or an error
      c.loop.close(c);
      return;
    }
    c.loop.feed(c, {buf->base, static_cast<std::size_t>(nread)});
    c.loop.drain(c);
  }

  static void on_write(uv_write_t* req, int status) {
    auto& c = *static_cast<Connection*>(req->data);
    if (c.closing) return;  // UV_ECANCELED from uv_close
    if (status < 0) {
      c.loop.close(c);
      return;
    }
    c.loop.written(c);
    c.loop.drain(c);
  }

  // Parses input, appending responses to c.out; keeps what output_full left unparsed.
  void feed(Connection& c, std::string_view input) {
    http::FeedResult r = c.codec.feed(input, c.out);
    if (r.responses > 0) idle_.touch(c, net::Clock::now());
    if (r.status == http::feed_status::output_full) c.backlog.append(input.substr(r.consumed_bytes));
  }

  // Writes c.out, then parses the backlog and writes again, until the backlog is empty (then reads
  // again), a write is in flight (on_write calls back here), or the connection closes.
  void drain(Connection& c) {
    for (;;) {
      if (!flush(c)) return;
      if (c.codec.closing()) {
        close(c);
        return;
      }
      if (c.backlog.empty()) {
        start_reading(c);
        return;
      }
      c.held.swap(c.backlog);
      c.backlog.clear();
      feed(c, c.held);
    }
  }

  // Sends c.out: uv_try_write for what the socket takes now, uv_write for the rest. Returns true
  // if all of it was sent, false if a write is in flight or the connection closed.
  bool flush(Connection& c) {
    if (c.out.empty()) return true;
    auto* stream = reinterpret_cast<uv_stream_t*>(&c.handle);
    uv_buf_t buf = uv_buf_init(c.out.data(), static_cast<unsigned>(c.out.size()));
    int n = uv_try_write(stream, &buf, 1);
    if (n == UV_EAGAIN) n = 0;
    if (n < 0) {
      close(c);
      return false;
    }
    if (static_cast<std::size_t>(n) == c.out.size()) {
      written(c);
      return true;
    }
    // The socket is full: stop reading until the rest is written.
    if (c.reading) uv_read_stop(stream);
    c.reading = false;
    buf = uv_buf_init(c.out.data() + n, static_cast<unsigned>(c.out.size() - static_cast<std::size_t>(n)));
    c.write_req.data = &c;
    if (uv_write(&c.write_req, stream, &buf, 1, on_write) != 0) {
      close(c);
      return false;
    }
    return false;
  }

  // c.out has been sent: empty it, dropping a large buffer (after a /bytes body) so that an idle
  // connection does not keep it.
  static void written(Connection& c) {
    if (c.out.capacity() > http::kOutputHighWaterBytes) std::string().swap(c.out);
    else c.out.clear();
  }

  void start_reading(Connection& c) {
    if (c.reading) return;
    if (uv_read_start(reinterpret_cast<uv_stream_t*>(&c.handle), on_alloc, on_read) != 0) {
      close(c);
      return;
    }
    c.reading = true;
  }

  // Starts closing c; on_closed frees it. c stays valid until then, so callers may return normally.
  void close(Connection& c) {
    if (c.closing) return;
    c.closing = true;
    idle_.unlink(c);
    uv_close(reinterpret_cast<uv_handle_t*>(&c.handle), on_closed);
  }

  static void on_closed(uv_handle_t* h) { delete static_cast<Connection*>(h->data); }

  static void on_tick(uv_timer_t* t) {
    Loop& self = *static_cast<Loop*>(t->loop->data);
    auto now = net::Clock::now();
    while (net::IdleNode* n = self.idle_.expired(now)) self.close(static_cast<Connection&>(*n));
    if (self.listener_state_ == Listener::closed && !self.stopping_) {
      self.listen();  // may fail again (still out of descriptors): retried on the next tick
    }
  }

  static void on_stop_async(uv_async_t* a) {
    Loop& self = *static_cast<Loop*>(a->loop->data);
    self.stopping_ = true;
    self.close_listener();
    if (self.tick_open_) {
      uv_close(reinterpret_cast<uv_handle_t*>(&self.tick_), nullptr);
      self.tick_open_ = false;
    }
    while (net::IdleNode* n = self.idle_.expired(net::Clock::time_point::max()))
      self.close(static_cast<Connection&>(*n));
    uv_close(reinterpret_cast<uv_handle_t*>(&self.stop_), nullptr);
    self.async_open_ = false;
  }

  int listen_fd_;  // main's listener (not owned)
  int backlog_;    // uv_listen calls listen(2) again: keep main's backlog
  uv_loop_t loop_{};
  uv_tcp_t listener_{};
  uv_timer_t tick_{};
  uv_async_t stop_{};
  net::IdleList idle_;  // every open connection, oldest deadline first
  char read_buf_[http::kReadBufferBytes];  // the one read buffer of this loop (see on_alloc)
  bool loop_open_ = false, async_open_ = false, tick_open_ = false;
  // The listener handle's state: closed (before open(), or paused after an accept failure, until
  // a tick reopens it), open, or closing (uv_close called, its callback not yet run).
  enum class Listener { closed, open, closing } listener_state_ = Listener::closed;
  std::atomic<bool> stop_sent_{false};
  bool stopping_ = false;
  bool ran_ = false;
};

int run(const server::Options& opt, server::Control& control) {
  const auto idle_timeout = std::chrono::milliseconds(opt.idle_timeout_ms);
  // Shared with the stop functions; libuv guarantees that a closed async handle is no longer
  // touched by uv_async_send, and the Loops outlive the threads that run them.
  std::vector<std::shared_ptr<Loop>> loops;
  for (int listen_fd : control.listeners()) {
    loops.push_back(std::make_shared<Loop>(listen_fd, opt.listen_backlog, idle_timeout));
    std::string err = loops.back()->open();
    if (!err.empty()) {
      std::fprintf(stderr, "cbench-server: libuv: %s\n", err.c_str());
      return 1;  // no thread runs yet; each Loop's destructor closes what it opened
    }
  }
  for (auto& l : loops) control.on_stop([l] { l->stop(); });

  return server::run_on_threads(
      "libuv", static_cast<int>(loops.size()), [&loops](int i) { loops[static_cast<std::size_t>(i)]->run(); },
      [&loops] {
        for (auto& l : loops) l->stop();
      });
}

}  // namespace

CBENCH_REGISTER_MODEL(libuv, "libuv",
                      "libuv loops (uv_tcp, per-loop read buffer, uv_try_write then uv_write), one per thread on SO_REUSEPORT listeners",
                      server::ListenerLayout::per_thread, &run)
