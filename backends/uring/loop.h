// A completion loop over one io_uring: accepts (multishot), receives into the provided-buffer
// ring, sends each connection's output (continuing partial sends), closes idle connections, and
// stops on request. What a connection does with its bytes is the Session type's business, so the
// io-uring model (the shared HTTP codec) and the completion floor (canned answers) drive the same
// loop and differ only in their sessions.
//
// Two receive modes (LoopConfig::recv), chosen once at start-up:
//
// single (the default). Per connection at most one operation is in flight: a receive while it
// waits for input, a send while it has output, or a send linked to the next receive. When the
// session says its output is all there is before it reads again (Session::reads_after_output: no
// held-back input, no closing response), the send goes in with MSG_WAITALL (the kernel finishes a
// partial send itself), IOSQE_CQE_SKIP_SUCCESS and IOSQE_IO_LINK to the connection's next receive:
// a send that goes out whole posts no completion, so the request costs one CQE (the next
// receive's) and the round that reaped each send's CQE before arming the receive is gone. That
// round was one io_uring_enter per request (the send completes inside the submitting enter, and
// its CQE satisfied that enter's wait), so a request cost two enters wherever rounds do not batch
// (a server faster than its client). Exactly one CQE ends the pair: the receive's (the send went
// out whole: the loop reports it consumed first), or the send's alone, when it failed or was
// cancelled (a failed CQE_SKIP_SUCCESS request posts its CQE and suppresses its links' -ECANCELED
// CQEs, REQ_F_SKIP_LINK_CQES). A receive is armed only in the session's read
// state (no output, no held-back input), so a client that pipelines without reading cannot make
// the server buffer without bound (the pump's back-pressure, as in every other model). A waiting
// receive holds no buffer: the kernel picks one from the buffer ring when data arrives, and the
// loop gives it back right after the session has consumed it.
//
// multishot (io-uring --uring-recv multishot). Per connection one IORING_OP_RECV with
// IORING_RECV_MULTISHOT, from the same buffer ring, stays armed across requests: no receive SQE
// per request, a send beside it when there is output. Input that completes while the session
// cannot take it (a send in flight, or the pump still writing what earlier input asked for) is
// held: the loop keeps the kernel's buffer, unread, in the connection's held queue (FIFO, at most
// LoopConfig::held_buffers_per_conn buffers), and feeds it once the session reads again. A full
// queue is the back-pressure: the loop cancels the receive (async cancel by user_data) and arms it
// again once the queue has drained. Buffers the kernel filled before the cancel landed are copied
// into the connection's spill (heap, freed when fed) and go back at once, so one connection never
// holds more than its bound of the thread's shared buffers (else a client that pipelines without
// reading could take them all and starve the thread's other connections). The spill is bounded
// by what one round can deliver, at most the whole ring (256 x 16 KiB = 4 MiB; in practice one
// kernel retry burst, 32 receives), and grows in that round only: the cancel is the next round's
// first SQE, and the receive stays off until the spill has drained. A CQE without
// IORING_CQE_F_MORE ends the receive: ENOBUFS (the ring ran dry) is re-armed after a round that
// leaves a buffer free, EOF closes once the held requests are answered, a real error closes.
// Ownership of a buffer in this mode: the kernel's while in the ring; the loop's from the CQE that
// names it until the one give_back() that returns it (fed at once, fed from the held queue, or
// dropped at close or stop). stats() counts both sides, so a test can check that every buffer
// went back exactly once.
//
// One round: one Ring::submit_and_wait (the round's SQEs go in and its CQEs come back in one
// io_uring_enter, or none when CQEs were already waiting and nothing is queued), then every ready
// CQE is handled, then, at most every kTick, the idle sweep. By default the first completion ends
// the wait: a server faster than its clients then enters about once per request. With
// LoopConfig::min_wait (io-uring --uring-min-wait-us) the wait asks for as many completions as
// connections are open (each has at most one completion coming in single mode) and settles for
// what it has after min_wait: fewer enters per request, at up to min_wait of added latency.
//
// Session contract (S), the shape of http::Pump (backends/http/pump.h) plus a per-loop context:
//   typename S::Context                        per-loop state shared by its sessions
//   S(Context&)
//   http::pump_state feed(Context&, std::string_view in)   precondition: state read. `in` is one
//        receive in a provided buffer, valid only during the call (the loop gives the buffer back
//        right after it). Returns read, write (output() is non-empty) or close.
//   std::string_view output() const            bytes to send; unchanged until consumed(): a send
//        in flight points into it
//   http::pump_state consumed(std::size_t n)   n bytes of output() went out; as feed
//   bool take_progress()                       requests completed since the last call (idle timer)
//   bool reads_after_output() const            true if, once output() has all gone out, the
//        state will be read (no held-back input, no closing response): single mode then links
//        the send to the next receive
//   static void on_tick(Context&)              once per tick (e.g. to renew a cached Date)
// In multishot mode feed() is called only in the read state as well (the loop tracks the state
// from the values feed and consumed return), so the session sees exactly the calls of single mode.
#pragma once
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backends/http/limits.h"
#include "backends/http/pump.h"
#include "backends/net/accept.h"
#include "backends/net/idle_list.h"
#include "backends/net/socket.h"
#include "backends/ring/ring.h"

namespace cb::uring {

// How connections receive (see the file comment).
enum class RecvMode : std::uint8_t {
  single,     // one receive per read state, armed only while the session reads
  multishot,  // one IORING_RECV_MULTISHOT receive per connection, kept armed; held queue
};

// Provided buffers per thread: receives that may complete in one round before the loop gives
// their buffers back. 256 x 16 KiB = 4 MiB of address space per thread, touched as used; a
// receive that finds none (-ENOBUFS) is re-armed after the round.
inline constexpr unsigned kBuffersPerThread = 256;

// Multishot mode: buffers one connection may hold while its session cannot take input. 4 x 16 KiB
// = 64 KiB, the pump's output high-water mark in input (kOutputHighWaterBytes): a client that keeps
// sending while its responses go out rarely gets further ahead. 64 connections at their bound
// hold all 256 buffers of a thread; the others' receives then end with ENOBUFS and wait for one.
inline constexpr unsigned kHeldBuffersPerConn = 4;

struct LoopConfig {
  const char* model = "io-uring";           // for start-up error messages
  std::chrono::milliseconds idle_timeout{0};  // 0: no idle timeout (the floor has none)
  RecvMode recv = RecvMode::single;
  // The thread's buffer ring (tests shrink it, so that it runs dry): a power of two, < 65535.
  unsigned buffers = kBuffersPerThread;
  unsigned buffer_bytes = static_cast<unsigned>(http::kReadBufferBytes);
  unsigned held_buffers_per_conn = kHeldBuffersPerConn;  // multishot mode, >= 1
  // Batched wait (see "One round" in the file comment): 0, the first completion ends a round's
  // wait; else the wait asks for one completion per open connection and settles for the first
  // after this long. Needs probe_min_wait().
  std::chrono::microseconds min_wait{0};
};

// What multishot mode did, for tests (read after run() returned: not thread-safe). Single mode
// counts nothing here (its path is unchanged).
struct LoopStats {
  std::uint64_t buffers_taken = 0;     // receive CQEs that named a provided buffer
  std::uint64_t buffers_returned = 0;  // buffers given back to the ring
  std::uint64_t buffer_misuse = 0;     // a buffer named while the loop held it, or returned twice
  std::uint64_t recv_arms = 0;         // multishot receives armed: one per connection, plus re-arms
  std::uint64_t recv_nobufs = 0;       // multishot receives that ended with ENOBUFS
  std::uint64_t recv_pauses = 0;       // multishot receives cancelled because the held queue was full
  std::uint64_t spilled_bytes = 0;     // bytes copied to a spill (filled before the cancel landed)
  unsigned held_high_water = 0;        // most buffers one connection held at once
};

template <class S>
class Loop {
 public:
  // How often the idle sweep runs and a listener paused on EMFILE is re-armed: as the epoll
  // models' sweep (four times a second).
  static constexpr std::chrono::milliseconds kTick{250};
  // SQ size: SQEs one round may queue before Ring::sqe submits early. 256 covers a round of the
  // benchmark's 64 connections (one SQE each) four times over; the CQ is twice this, and the
  // kernel keeps overflowing CQEs (IORING_FEAT_NODROP), so a larger burst is slower, not lost.
  static constexpr unsigned kRingEntries = 256;
  static constexpr std::uint16_t kBufferGroup = 0;

  // Sets up the ring and its buffers; ok() says whether that worked (the failure is printed with
  // its context, before any thread starts).
  Loop(int listen_fd, LoopConfig config) : listen_fd_(listen_fd), config_(config), idle_(config.idle_timeout) {
    starved_.reserve(config_.buffers);
    if (multishot()) {  // the held queues' links and the ownership marks: one slot per buffer
      held_next_.assign(config_.buffers, kNoBuffer);
      held_len_.assign(config_.buffers, 0);
      loop_owns_.assign(config_.buffers, 0);
    }
    wake_fd_ = eventfd(0, EFD_CLOEXEC);
    std::string err = wake_fd_ < 0 ? "eventfd failed" : ring_.init(kRingEntries);
    if (err.empty() && (config_.buffers >= kNoBuffer || config_.held_buffers_per_conn == 0))
      err = "bad buffer ring configuration";
    if (err.empty()) err = buffers_.init(ring_, kBufferGroup, config_.buffers, config_.buffer_bytes);
    if (err.empty() && !net::set_nonblocking(listen_fd_)) err = "unable to make the listener non-blocking";
    if (!err.empty()) std::fprintf(stderr, "cbench-server: %s: %s\n", config_.model, err.c_str());
    ok_ = err.empty();
  }
  ~Loop() {
    if (wake_fd_ >= 0) net::close_fd(wake_fd_);
  }
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  bool ok() const { return ok_; }

  // Multishot mode's counts (LoopStats). Read only after run() returned, on a thread that joined it.
  const LoopStats& stats() const { return stats_; }

  // Thread-safe; may be called before run() starts or after it returned.
  void stop() {
    stop_requested_.store(true, std::memory_order_release);
    std::uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
  }

  // Serves until stop(); the calling thread becomes the ring's only submitter. Returns 0 after a
  // stop, 1 on a failure (printed with its context).
  int run() {
    std::string err = ring_.enable();
    if (!err.empty()) {
      std::fprintf(stderr, "cbench-server: %s: %s\n", config_.model, err.c_str());
      return 1;
    }
    arm_wake();
    arm_accept();
    auto next_tick = net::Clock::now() + kTick;
    while (!stop_requested_.load(std::memory_order_acquire)) {
      int rc = ring_.submit_and_wait(kTick, std::max(open_, 1U), config_.min_wait);
      if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY && rc != -EAGAIN) {
        std::fprintf(stderr, "cbench-server: %s: io_uring_enter failed: %s\n", config_.model, std::strerror(-rc));
        drain_for_stop();
        return 1;
      }
      ring_.for_each_cqe([this](io_uring_cqe* cqe) { on_cqe(cqe); });
      if (multishot()) {
        rearm_starved();
      } else {
        for (Conn* c : starved_) post_recv(*c);  // buffers were given back during the round
        starved_.clear();
      }
      auto now = net::Clock::now();
      if (now >= next_tick) {
        on_tick(now);
        next_tick = now + kTick;
      }
    }
    drain_for_stop();
    return 0;
  }

 private:
  enum class op : std::uint8_t { none, recv, send, send_recv };
  // user_data: a pointer (8-byte aligned) with its operation in the low 3 bits.
  enum tag : std::uint64_t { kIgnore = 0, kAccept = 1, kRecv = 2, kSend = 3, kWake = 4 };

  struct Conn {
    explicit Conn(typename S::Context& ctx, int fd_) : fd(fd_), session(ctx) { idle.owner = this; }
    int fd;
    op inflight = op::none;
    bool closing = false;  // close as soon as the operation in flight completes
    S session;
    struct Idle : net::IdleNode {
      Conn* owner = nullptr;
    } idle;
    Conn* prev = nullptr;  // the loop's open connections, closed at stop
    Conn* next = nullptr;
  };

  // --- Multishot mode's connection -------------------------------------------------------------
  static constexpr std::uint16_t kNoBuffer = 0xFFFF;

  // Where a connection's multishot receive is.
  enum class recv_state : std::uint8_t {
    off,         // not in the kernel: settle() arms it unless paused, the peer closed, or closing
    armed,       // in the kernel (its last CQE, the one without IORING_CQE_F_MORE, has not come)
    cancelling,  // in the kernel, and a cancel for it is queued or submitted
    starved,     // ended with ENOBUFS: waits in starved_ until a round leaves a buffer free
  };

  // Input copied out of buffers the kernel filled while the held queue was full (see the file
  // comment). Allocated only then; freed as soon as it has all been fed.
  struct Spill {
    std::string bytes;
    std::size_t fed = 0;  // bytes of `bytes` already fed to the session
  };

  // A connection in multishot mode: the single-mode fields (inflight unused) plus the receive's
  // state and the input held for the session. A separate type, so single mode's connections keep
  // their size. The loop encodes a Conn* in user_data; static_cast converts both ways.
  struct MsConn : Conn {
    using Conn::Conn;
    recv_state recv = recv_state::off;
    bool sending = false;         // a send is in flight
    bool send_cancelled = false;  // ... and a cancel for it was queued (closing)
    bool paused = false;          // the held queue reached its bound: no receive until it drains
    bool peer_closed = false;     // the receive saw EOF: close once every held request is answered
    http::pump_state st = http::pump_state::read;  // the session's state, from feed()/consumed()
    // The held queue: buffer ids, oldest first, linked through the loop's held_next_.
    std::uint16_t held_head = kNoBuffer;
    std::uint16_t held_tail = kNoBuffer;
    std::uint16_t held_count = 0;
    std::unique_ptr<Spill> spill;  // input that follows the held queue's (rare, see Spill)
  };

  bool multishot() const { return config_.recv == RecvMode::multishot; }
  static MsConn& ms(Conn& c) { return static_cast<MsConn&>(c); }
  static bool has_held(const MsConn& c) { return c.held_count > 0 || c.spill != nullptr; }

  static std::uint64_t data_of(const void* p, tag t) { return reinterpret_cast<std::uint64_t>(p) | t; }

  void arm_wake() {
    io_uring_sqe* s = ring_.sqe();
    io_uring_prep_read(s, wake_fd_, &wake_value_, sizeof wake_value_, 0);
    io_uring_sqe_set_data64(s, data_of(this, kWake));
  }

  void arm_accept() {
    io_uring_sqe* s = ring_.sqe();
    if (ring_.multishot_accept) io_uring_prep_multishot_accept(s, listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    else io_uring_prep_accept(s, listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(s, data_of(this, kAccept));
    accept_armed_ = true;
  }

  void post_recv(Conn& c) {
    io_uring_sqe* s = ring_.sqe();
    io_uring_prep_recv(s, c.fd, nullptr, buffers_.buffer_bytes(), 0);
    s->flags |= IOSQE_BUFFER_SELECT;
    s->buf_group = buffers_.group_id();
    io_uring_sqe_set_data64(s, data_of(&c, kRecv));
    c.inflight = op::recv;
  }

  void post_send(Conn& c) {
    io_uring_sqe* s = ring_.sqe();
    const std::string_view out = c.session.output();
    io_uring_prep_send(s, c.fd, out.data(), out.size(), MSG_NOSIGNAL);
    io_uring_sqe_set_data64(s, data_of(&c, kSend));
    c.inflight = op::send;
  }

  // The whole output, then the next receive, as one link (see the file comment). Both SQEs go
  // into one submission: a submit between them would end the link at the send.
  void post_send_then_recv(Conn& c) {
    ring_.reserve(2);
    io_uring_sqe* s = ring_.sqe();
    const std::string_view out = c.session.output();
    io_uring_prep_send(s, c.fd, out.data(), out.size(), MSG_NOSIGNAL | MSG_WAITALL);
    s->flags |= IOSQE_IO_LINK | IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe_set_data64(s, data_of(&c, kSend));
    post_recv(c);
    c.inflight = op::send_recv;
  }

  void post_cancel(std::uint64_t user_data) {
    io_uring_sqe* s = ring_.sqe();
    io_uring_prep_cancel64(s, user_data, 0);
    io_uring_sqe_set_data64(s, kIgnore);
  }

  void on_cqe(io_uring_cqe* cqe) {
    const std::uint64_t d = cqe->user_data;
    void* p = reinterpret_cast<void*>(d & ~std::uint64_t{7});
    switch (static_cast<tag>(d & 7)) {
      case kAccept: on_accept(cqe->res, (cqe->flags & IORING_CQE_F_MORE) != 0); break;
      case kRecv:
        if (multishot()) on_recv_multishot(ms(*static_cast<Conn*>(p)), cqe->res, cqe->flags);
        else on_recv(*static_cast<Conn*>(p), cqe->res, cqe->flags);
        break;
      case kSend:
        if (multishot()) on_send_multishot(ms(*static_cast<Conn*>(p)), cqe->res);
        else on_send(*static_cast<Conn*>(p), cqe->res);
        break;
      case kWake: stop_requested_.store(true, std::memory_order_release); break;
      default: break;  // a cancel's own completion
    }
  }

  void on_accept(int res, bool more) {
    if (res >= 0 && stopping_) {
      net::close_fd(res);
    } else if (res >= 0) {
      net::count_accepted();  // the kernel accepts here (an SQE), not net::Acceptor
      net::set_nodelay(res);
      Conn* c = multishot() ? new MsConn(context_, res) : new Conn(context_, res);
      c->next = head_;
      if (head_ != nullptr) head_->prev = c;
      head_ = c;
      ++open_;
      if (config_.idle_timeout.count() > 0) idle_.touch(c->idle, net::Clock::now());
      if (multishot()) arm_recv_multishot(ms(*c), /*rearm=*/false);
      else post_recv(*c);
    } else if (res == -EINVAL && ring_.multishot_accept) {
      ring_.multishot_accept = false;  // the stated fallback: one accept SQE per connection
    } else if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM) {
      accept_paused_ = true;  // re-armed by the next tick, so a full file table is not spun on
      if (more) post_cancel(data_of(this, kAccept));
    }
    if (!more) {
      accept_armed_ = false;
      if (!accept_paused_ && !stopping_) arm_accept();
    }
  }

  void on_recv(Conn& c, int res, unsigned flags) {
    // The receive of a send-and-receive pair runs only after the send went out whole.
    if (c.inflight == op::send_recv && !c.closing) c.session.consumed(c.session.output().size());
    c.inflight = op::none;
    if (res > 0 && (flags & IORING_CQE_F_BUFFER) != 0) {
      const unsigned id = flags >> IORING_CQE_BUFFER_SHIFT;
      if (c.closing) {
        buffers_.recycle(id);
        return close(c);
      }
      http::pump_state st = c.session.feed(context_, {buffers_.buffer(id), static_cast<std::size_t>(res)});
      buffers_.recycle(id);  // the session keeps what it holds back: the buffer is free again
      note_progress(c);
      return next(c, st);
    }
    if (res == -ENOBUFS && !c.closing) {
      starved_.push_back(&c);
      return;
    }
    close(c);  // EOF, an error, or the cancel of an idle or stopping connection
  }

  // A single send's completion, or the only CQE of a send-and-receive pair whose send failed, was
  // cancelled or came up short (its receive never ran and posts nothing).
  void on_send(Conn& c, int res) {
    c.inflight = op::none;
    if (c.closing || res < 0) return close(c);
    // A partial send leaves the rest in output(): next() sends it from there.
    http::pump_state st = c.session.consumed(static_cast<std::size_t>(res));
    note_progress(c);
    next(c, st);
  }

  void next(Conn& c, http::pump_state st) {
    switch (st) {
      case http::pump_state::read: return post_recv(c);
      case http::pump_state::write:
        return c.session.reads_after_output() ? post_send_then_recv(c) : post_send(c);
      case http::pump_state::close: return close(c);
    }
  }

  void note_progress(Conn& c) {
    if (c.session.take_progress() && config_.idle_timeout.count() > 0) idle_.touch(c.idle, net::Clock::now());
  }

  // Closes now if nothing is in flight, else cancels the operation and closes at its completion.
  void begin_close(Conn& c) {
    idle_.unlink(c.idle);
    if (c.closing) return;
    if (multishot()) {  // settle() cancels what is in flight and closes when nothing is
      c.closing = true;
      return settle(ms(c));
    }
    c.closing = true;
    if (c.inflight == op::recv) post_cancel(data_of(&c, kRecv));
    else if (c.inflight == op::send) post_cancel(data_of(&c, kSend));
    else if (c.inflight == op::send_recv) {  // whichever of the pair is in the kernel
      post_cancel(data_of(&c, kSend));
      post_cancel(data_of(&c, kRecv));
    } else close(c);
  }

  // Precondition: nothing of c's is in the kernel. Returns a multishot connection's held buffers.
  void close(Conn& c) {
    if (multishot()) release_held(ms(c));
    idle_.unlink(c.idle);
    if (c.prev != nullptr) c.prev->next = c.next;
    else head_ = c.next;
    if (c.next != nullptr) c.next->prev = c.prev;
    --open_;
    net::close_connection(c.fd);
    destroy(&c);
  }

  void destroy(Conn* c) {
    if (multishot()) delete &ms(*c);
    else delete c;
  }

  void on_tick(net::Clock::time_point now) {
    S::on_tick(context_);
    if (config_.idle_timeout.count() > 0) {
      // Bounded by the connections open: each expired one is unlinked by begin_close.
      while (net::IdleNode* n = idle_.expired(now)) begin_close(*conn_of(n));
    }
    if (accept_paused_ && !accept_armed_ && !stopping_) {
      accept_paused_ = false;
      arm_accept();
    }
  }

  static Conn* conn_of(net::IdleNode* n) { return static_cast<typename Conn::Idle*>(n)->owner; }

  // After a stop: cancels the accept and every connection's operation, and reaps until all have
  // completed (the kernel may touch a send's buffer until its CQE), bounded so that a stuck
  // operation cannot hold the stop; then ~Ring tears the ring down.
  void drain_for_stop() {
    stopping_ = true;
    if (accept_armed_) post_cancel(data_of(this, kAccept));
    for (Conn* c = head_; c != nullptr;) {
      Conn* next = c->next;
      begin_close(*c);
      c = next;
    }
    starved_.clear();  // multishot: begin_close already took every starved one off (unstarve)
    for (int round = 0; round < 20 && (head_ != nullptr || accept_armed_); ++round) {
      int rc = ring_.submit_and_wait(std::chrono::milliseconds(50));
      if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY && rc != -EAGAIN) break;
      ring_.for_each_cqe([this](io_uring_cqe* cqe) { on_cqe(cqe); });
      if (!multishot()) {  // a closing multishot connection never starves (on_recv_multishot)
        for (Conn* c : starved_) close(*c);
        starved_.clear();
      }
    }
    while (head_ != nullptr) {  // did not complete in time: leak nothing we own
      Conn* c = head_;
      head_ = c->next;
      --open_;
      net::close_fd(c->fd);
      // The kernel may still hold the send buffer until the ring is torn down: keep the memory.
      if (multishot()) {
        MsConn& m = ms(*c);
        release_held(m);
        if (m.recv == recv_state::off && !m.sending) delete &m;
      } else if (c->inflight == op::none) {
        delete c;
      }
    }
  }

  // --- Multishot mode ------------------------------------------------------------------------
  // Every completion of a multishot connection ends in settle(), which moves it to its next step.

  // Arms c's multishot receive. len 0: each completion fills one provided buffer (kernels before
  // 6.16 refuse a length with IORING_RECV_MULTISHOT).
  void arm_recv_multishot(MsConn& c, bool rearm) {
    io_uring_sqe* s = ring_.sqe();
    io_uring_prep_recv_multishot(s, c.fd, nullptr, 0, 0);
    s->flags |= IOSQE_BUFFER_SELECT;
    s->buf_group = buffers_.group_id();
    io_uring_sqe_set_data64(s, data_of(static_cast<Conn*>(&c), kRecv));
    c.recv = recv_state::armed;
    ++stats_.recv_arms;
    if (rearm) stats::count(stats::Counter::rearms);
  }

  void post_send_multishot(MsConn& c) {
    io_uring_sqe* s = ring_.sqe();
    const std::string_view out = c.session.output();
    io_uring_prep_send(s, c.fd, out.data(), out.size(), MSG_NOSIGNAL);
    io_uring_sqe_set_data64(s, data_of(static_cast<Conn*>(&c), kSend));
    c.sending = true;
  }

  // A CQE of c's multishot receive. Without IORING_CQE_F_MORE it is the receive's last (EOF, our
  // cancel, ENOBUFS, an error, or a full CQ: then it may still carry data).
  void on_recv_multishot(MsConn& c, int res, unsigned flags) {
    const bool last = (flags & IORING_CQE_F_MORE) == 0;
    if (last) c.recv = recv_state::off;
    const auto id = static_cast<std::uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
    if ((flags & IORING_CQE_F_BUFFER) != 0 && res <= 0 && own(id)) give_back(id);  // named, but empty
    if (res > 0 && (flags & IORING_CQE_F_BUFFER) != 0) {
      take(c, id, static_cast<unsigned>(res));
    } else if (res == 0) {
      c.peer_closed = true;
    } else if (res == -ENOBUFS) {
      ++stats_.recv_nobufs;
      stats::count(stats::Counter::recv_nobufs);
      if (last && !c.closing && !c.paused) {  // re-armed after a round that frees a buffer
        c.recv = recv_state::starved;
        starved_.push_back(&c);
      }
    } else if (res < 0 && res != -ECANCELED) {  // -ECANCELED: our own cancel (pause or close)
      c.closing = true;  // a real error (ECONNRESET, ...): close once nothing is in flight
    }
    settle(c);
  }

  void on_send_multishot(MsConn& c, int res) {
    c.sending = false;
    c.send_cancelled = false;
    if (res < 0) {
      c.closing = true;
    } else if (!c.closing) {
      // A partial send leaves the rest in output(): settle() sends it from there.
      c.st = c.session.consumed(static_cast<std::size_t>(res));
      note_progress(c);
    }
    settle(c);
  }

  // Buffer `id` holds `len` bytes of c's input and is now the loop's. Fed at once if the session
  // reads and nothing older waits; else held at the end of c's queue; or, if the queue is full,
  // copied to c's spill. Each path gives the buffer back exactly once (here, in feed_held, or in
  // release_held).
  void take(MsConn& c, std::uint16_t id, unsigned len) {
    if (!own(id)) return;
    if (c.closing) return give_back(id);
    if (c.st == http::pump_state::read && !c.sending && !has_held(c)) {
      c.st = c.session.feed(context_, {buffers_.buffer(id), len});
      give_back(id);  // the session keeps what it holds back: the buffer is free again
      return note_progress(c);
    }
    if (c.held_count < config_.held_buffers_per_conn && c.spill == nullptr) {
      held_next_[id] = kNoBuffer;
      held_len_[id] = len;
      if (c.held_tail == kNoBuffer) c.held_head = id;
      else held_next_[c.held_tail] = id;
      c.held_tail = id;
      ++c.held_count;
      ++held_total_;
      if (c.held_count > stats_.held_high_water) stats_.held_high_water = c.held_count;
      return;
    }
    if (c.spill == nullptr) c.spill = std::make_unique<Spill>();
    c.spill->bytes.append(buffers_.buffer(id), len);
    stats_.spilled_bytes += len;
    give_back(id);
  }

  // Marks buffer `id`, named by a CQE, as the loop's. False (counted as misuse) if the loop holds
  // it already or it is not one of the ring's: then it must not be used or given back.
  bool own(std::uint16_t id) {
    ++stats_.buffers_taken;
    if (id >= config_.buffers || loop_owns_[id] != 0) {
      ++stats_.buffer_misuse;
      return false;
    }
    loop_owns_[id] = 1;
    return true;
  }

  // Returns buffer `id` to the kernel's ring (the loop must hold it).
  void give_back(std::uint16_t id) {
    if (loop_owns_[id] == 0) {
      ++stats_.buffer_misuse;
      return;
    }
    loop_owns_[id] = 0;
    ++stats_.buffers_returned;
    buffers_.recycle(id);
  }

  // Feeds the session c's oldest held input: one held buffer, or one buffer's worth of the spill
  // (the pump holds back at most one feed: feeding more at once would raise its bound).
  // Precondition: state read, no send in flight, has_held(c).
  void feed_held(MsConn& c) {
    if (c.held_head != kNoBuffer) {
      const std::uint16_t id = c.held_head;
      c.held_head = held_next_[id];
      if (c.held_head == kNoBuffer) c.held_tail = kNoBuffer;
      --c.held_count;
      --held_total_;
      c.st = c.session.feed(context_, {buffers_.buffer(id), held_len_[id]});
      give_back(id);
    } else {
      Spill& sp = *c.spill;
      const std::size_t n = std::min<std::size_t>(config_.buffer_bytes, sp.bytes.size() - sp.fed);
      c.st = c.session.feed(context_, std::string_view(sp.bytes).substr(sp.fed, n));
      sp.fed += n;
      if (sp.fed == sp.bytes.size()) c.spill.reset();
    }
    note_progress(c);
  }

  // Gives back every buffer c holds and drops its spill; takes c off starved_ (close, stop).
  void release_held(MsConn& c) {
    while (c.held_head != kNoBuffer) {
      const std::uint16_t id = c.held_head;
      c.held_head = held_next_[id];
      --held_total_;
      give_back(id);
    }
    c.held_tail = kNoBuffer;
    c.held_count = 0;
    c.spill.reset();
    unstarve(c);
  }

  // Takes c off starved_ (it closes): its receive is not re-armed. Linear, but only on a close of
  // a connection whose receive found the ring dry.
  void unstarve(MsConn& c) {
    if (c.recv != recv_state::starved) return;
    for (std::size_t i = 0; i < starved_.size(); ++i) {
      if (starved_[i] == &c) {
        starved_[i] = starved_.back();
        starved_.pop_back();
        break;
      }
    }
    c.recv = recv_state::off;
  }

  // Moves c to its next step after any of its completions: feeds held input while the session
  // reads, sends output, keeps the receive armed or pauses it (the held queue's bound), and, once
  // closing, cancels what is in flight and closes when nothing is. May delete c.
  void settle(MsConn& c) {
    if (!c.closing) {
      // Bounded by what c holds: each pass feeds one held buffer or one buffer's worth of spill.
      while (c.st == http::pump_state::read && !c.sending && has_held(c)) feed_held(c);
      if (c.st == http::pump_state::write && !c.sending) post_send_multishot(c);
      else if (c.st == http::pump_state::close) c.closing = true;  // its closing response went out
      else if (c.st == http::pump_state::read && !c.sending && c.peer_closed) c.closing = true;  // EOF, all answered
    }
    if (!c.closing) {
      if (c.held_count >= config_.held_buffers_per_conn || c.spill != nullptr) c.paused = true;
      else if (!has_held(c)) c.paused = false;  // drained: receive again
      if (c.paused && c.recv == recv_state::armed) {
        post_cancel(data_of(static_cast<Conn*>(&c), kRecv));
        c.recv = recv_state::cancelling;
        ++stats_.recv_pauses;
        stats::count(stats::Counter::recv_pauses);
      } else if (!c.paused && !c.peer_closed && c.recv == recv_state::off) {
        arm_recv_multishot(c, /*rearm=*/true);
      }
      return;
    }
    unstarve(c);
    if (c.recv == recv_state::armed) {
      post_cancel(data_of(static_cast<Conn*>(&c), kRecv));
      c.recv = recv_state::cancelling;
    }
    if (c.sending && !c.send_cancelled) {
      post_cancel(data_of(static_cast<Conn*>(&c), kSend));
      c.send_cancelled = true;
    }
    if (c.recv == recv_state::off && !c.sending) close(c);
  }

  // After a round: the receives that ended with ENOBUFS, armed again if the round left a buffer
  // in the ring (with none, the kernel would answer ENOBUFS at once: they wait for a later round).
  void rearm_starved() {
    if (starved_.empty() || held_total_ >= config_.buffers) return;
    for (Conn* p : starved_) {
      MsConn& c = ms(*p);
      c.recv = recv_state::off;
      arm_recv_multishot(c, /*rearm=*/true);
    }
    starved_.clear();
  }

  int listen_fd_;
  LoopConfig config_;
  bool ok_ = false;
  int wake_fd_ = -1;
  std::uint64_t wake_value_ = 0;
  std::atomic<bool> stop_requested_{false};
  bool stopping_ = false;
  bool accept_armed_ = false;
  bool accept_paused_ = false;
  Ring ring_;
  BufferRing buffers_;  // after ring_: unregistered before the ring is torn down
  typename S::Context context_;
  net::IdleList idle_;
  Conn* head_ = nullptr;
  unsigned open_ = 0;  // connections in the head_ list: the batched wait's target
  std::vector<Conn*> starved_;  // receives that found no buffer this round: re-armed after it
  // Multishot mode (empty in single mode): per buffer id, the next id in its connection's held
  // queue and its byte count (a buffer is held by at most one connection at a time, so the queues
  // need no memory of their own), and whether the loop holds it (1) or the kernel's ring does (0).
  std::vector<std::uint16_t> held_next_;
  std::vector<std::uint32_t> held_len_;
  std::vector<std::uint8_t> loop_owns_;
  unsigned held_total_ = 0;  // buffers in all held queues: the ring has config_.buffers - this
  LoopStats stats_;
};

}  // namespace cb::uring
