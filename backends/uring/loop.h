// A completion loop over one io_uring: accepts (multishot), receives into the provided-buffer
// ring, sends each connection's output (continuing partial sends), closes idle connections, and
// stops on request. What a connection does with its bytes is the Session type's business, so the
// io-uring model (the shared HTTP codec) and the completion floor (canned answers) drive the same
// loop and differ only in their sessions.
//
// Per connection at most one operation is in flight: a receive while it waits for input, a send
// while it has output. A receive is armed only in the session's read state (no output, no
// held-back input), so a client that pipelines without reading cannot make the server buffer
// without bound (the pump's back-pressure, as in every other model). A waiting receive holds no buffer: the kernel picks one
// from the buffer ring when data arrives, and the loop gives it back right after the session has
// consumed it.
//
// One round: one Ring::submit_and_wait (the round's SQEs go in and its CQEs come back in one
// io_uring_enter, or none when CQEs were already waiting and nothing is queued), then every ready
// CQE is handled, then, at most every kTick, the idle sweep.
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
//   static void on_tick(Context&)              once per tick (e.g. to renew a cached Date)
#pragma once
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "backends/http/limits.h"
#include "backends/http/pump.h"
#include "backends/net/idle_list.h"
#include "backends/net/socket.h"
#include "backends/uring/ring.h"

namespace cb::uring {

struct LoopConfig {
  const char* model = "io-uring";           // for start-up error messages
  std::chrono::milliseconds idle_timeout{0};  // 0: no idle timeout (the floor has none)
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
  // Provided buffers per thread: receives that may complete in one round before the loop gives
  // their buffers back. 256 x 16 KiB = 4 MiB of address space per thread, touched as used; a
  // receive that finds none (-ENOBUFS) is re-armed after the round.
  static constexpr unsigned kBuffers = 256;
  static constexpr std::uint16_t kBufferGroup = 0;

  // Sets up the ring and its buffers; ok() says whether that worked (the failure is printed with
  // its context, before any thread starts).
  Loop(int listen_fd, LoopConfig config) : listen_fd_(listen_fd), config_(config), idle_(config.idle_timeout) {
    starved_.reserve(kBuffers);
    wake_fd_ = eventfd(0, EFD_CLOEXEC);
    std::string err = wake_fd_ < 0 ? "eventfd failed" : ring_.init(kRingEntries);
    if (err.empty()) err = buffers_.init(ring_, kBufferGroup, kBuffers, static_cast<unsigned>(http::kReadBufferBytes));
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
      int rc = ring_.submit_and_wait(kTick);
      if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY && rc != -EAGAIN) {
        std::fprintf(stderr, "cbench-server: %s: io_uring_enter failed: %s\n", config_.model, std::strerror(-rc));
        drain_for_stop();
        return 1;
      }
      ring_.for_each_cqe([this](io_uring_cqe* cqe) { on_cqe(cqe); });
      for (Conn* c : starved_) post_recv(*c);  // buffers were given back during the round
      starved_.clear();
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
  enum class op : std::uint8_t { none, recv, send };
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
      case kRecv: on_recv(*static_cast<Conn*>(p), cqe->res, cqe->flags); break;
      case kSend: on_send(*static_cast<Conn*>(p), cqe->res); break;
      case kWake: stop_requested_.store(true, std::memory_order_release); break;
      default: break;  // a cancel's own completion
    }
  }

  void on_accept(int res, bool more) {
    if (res >= 0 && stopping_) {
      net::close_fd(res);
    } else if (res >= 0) {
      server::count(server::Counter::accepts);
      net::set_nodelay(res);
      auto* c = new Conn(context_, res);
      c->next = head_;
      if (head_ != nullptr) head_->prev = c;
      head_ = c;
      if (config_.idle_timeout.count() > 0) idle_.touch(c->idle, net::Clock::now());
      post_recv(*c);
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
      case http::pump_state::write: return post_send(c);
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
    c.closing = true;
    if (c.inflight == op::recv) post_cancel(data_of(&c, kRecv));
    else if (c.inflight == op::send) post_cancel(data_of(&c, kSend));
    else close(c);
  }

  void close(Conn& c) {
    server::count(server::Counter::closes);
    idle_.unlink(c.idle);
    if (c.prev != nullptr) c.prev->next = c.next;
    else head_ = c.next;
    if (c.next != nullptr) c.next->prev = c.prev;
    net::close_fd(c.fd);
    delete &c;
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
    starved_.clear();
    for (int round = 0; round < 20 && (head_ != nullptr || accept_armed_); ++round) {
      int rc = ring_.submit_and_wait(std::chrono::milliseconds(50));
      if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY && rc != -EAGAIN) break;
      ring_.for_each_cqe([this](io_uring_cqe* cqe) { on_cqe(cqe); });
      for (Conn* c : starved_) close(*c);
      starved_.clear();
    }
    while (head_ != nullptr) {  // did not complete in time: leak nothing we own
      Conn* c = head_;
      head_ = c->next;
      net::close_fd(c->fd);
      // The kernel may still hold the send buffer until the ring is torn down: keep the memory.
      if (c->inflight == op::none) delete c;
    }
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
  std::vector<Conn*> starved_;  // receives that found no buffer this round: re-armed after it
};

}  // namespace cb::uring
