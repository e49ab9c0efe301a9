#include "backends/loadgen/engine.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <memory>
#include <random>
#include <string_view>
#include <thread>

#include "backends/loadgen/response_parser.h"
#include "backends/ring/ring.h"

namespace cb::loadgen {
namespace {

using ns_t = std::int64_t;
constexpr ns_t kNsPerS = 1'000'000'000;

ns_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// After a connection error, wait this long before reconnecting, so that a server that refuses or
// closes everything is retried 100 times a second per connection, not at CPU speed.
constexpr ns_t kReconnectDelayNs = 10'000'000;
// Reads per readiness event, 64 KiB each: bounds one connection's share of a loop turn.
constexpr int kMaxReadsPerEvent = 16;
constexpr std::size_t kReadChunkBytes = 64 * 1024;
constexpr int kMaxEvents = 256;
// uring engine: SQ entries per thread (a turn's sends and re-arms; a fuller turn submits early,
// which costs one more io_uring_enter, not correctness), and the provided-buffer ring that
// receives land in: 256 buffers of 16 KiB (4 MiB a thread), copied out and recycled as each
// completion is handled, so only a turn's completions hold buffers at once.
constexpr unsigned kRingEntries = 256;
constexpr unsigned kRecvBuffers = 256;
constexpr unsigned kRecvBufferBytes = 16 * 1024;
constexpr std::uint16_t kRecvBufferGroup = 1;

// uring engine: what a completion was for, and to which connection of its slot. user_data packs
// the slot index (bits 0-31), the slot's generation when submitted (bits 32-47; a connection
// failed and reopened on the slot has another, so late completions of the old one are told
// apart) and the op (bits 48-55).
enum class uring_op : std::uint8_t { connect_poll = 1, recv = 2, send = 3 };
std::uint64_t pack_user_data(uring_op op, std::uint32_t generation, std::size_t index) {
  return (static_cast<std::uint64_t>(op) << 48) | (static_cast<std::uint64_t>(generation & 0xFFFF) << 32) |
         static_cast<std::uint64_t>(index);
}

enum class conn_state { connecting, open, backoff };

struct Conn {
  int fd = -1;
  conn_state state = conn_state::backoff;
  ns_t reconnect_at_ns = 0;
  std::string in;          // unconsumed response bytes
  ResponseParser parser;
  std::deque<ns_t> inflight_start_ns;  // per request: intended (open) or actual (closed) send time
  std::string out;         // request bytes not yet written
  bool in_free_list = false;
  bool dirty = false;      // has bytes in `out` to flush this turn
  std::uint64_t responses = 0;  // answered on this connection since it connected
  // Over the whole run on this slot (reconnects included): requests queued, responses parsed.
  std::uint64_t requests_ever = 0;
  std::uint64_t responses_ever = 0;
  std::uint32_t watched = 0;    // the epoll mask last set, so unchanged masks cost no syscall
  // --read-rate: the token bucket (bytes this connection may read now) and its last refill;
  // while read_paused, EPOLLIN is off until resume_at_ns (the kernel buffers meanwhile fill).
  double read_tokens = 0.0;
  ns_t tokens_at_ns = 0;
  bool read_paused = false;
  ns_t resume_at_ns = 0;
  // uring engine. The slot has at most one receive and one send with the kernel at a time, and
  // they stay counted until their last completion even after the connection fails (so `sending`,
  // which the kernel reads, is never touched while a send is out); a reopened connection arms
  // its own when the old ones have completed. generation changes when the connection fails.
  std::string sending;     // bytes handed to the kernel's send (moved from `out`)
  bool send_inflight = false;
  bool recv_armed = false;
  std::uint32_t generation = 0;
};

// --read-rate's bucket holds at most 1/100 s of the rate and a connection reads only when it
// holds at least half of that (so it wakes at most about 200 times a second to read), between
// 1 byte and one read chunk.
double read_quantum_bytes(double rate_bytes_per_s) {
  return std::clamp(rate_bytes_per_s / 100.0, 1.0, 65536.0);
}

class Worker {
 public:
  Worker(const LoadConfig& cfg, int index, int connections, ns_t start_ns, ns_t end_ns)
      : cfg_(cfg), conns_(static_cast<std::size_t>(connections)), start_ns_(start_ns), end_ns_(end_ns),
        rng_(cfg.seed * 0x9E3779B97F4A7C15ULL + static_cast<std::uint64_t>(index)) {
    request_ = "GET " + cfg.target.path + " HTTP/1.1\r\nHost: " + cfg.target.host + ":" +
               std::to_string(cfg.target.port) + "\r\nUser-Agent: cbench-load\r\n\r\n";
    slot_ns_ = series_slot_s(cfg.duration_s) * kNsPerS;
    auto slots = static_cast<std::size_t>((end_ns - start_ns + slot_ns_ - 1) / slot_ns_);
    result_.seconds.resize(std::max<std::size_t>(slots, 1));
    if (cfg.mode == load_mode::open) {
      rate_per_thread_ = cfg.rate_per_s / cfg.threads;
      interval_ns_ = static_cast<double>(kNsPerS) / rate_per_thread_;
      // Constant arrivals: threads interleave (thread k starts k/T of an interval late).
      // Arrivals are scheduled in on-time (active_ns_) and mapped to the wall by the duty cycle.
      first_active_ns_ = static_cast<double>(interval_ns_ * index / cfg.threads);
      active_ns_ = cfg.arrivals == arrival_kind::poisson ? next_gap_ns() : static_cast<ns_t>(first_active_ns_);
      next_arrival_ns_ = start_ns + cfg.duty.wall_offset_ns(active_ns_);
    }
  }

  ThreadResult run() {
    // The default 50 us timer slack would show up as send lag in every open-loop wake-up.
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    if (uring_) {
      // engine_unavailable() was asked before the threads started; a ring refused now (memory
      // locked, a limit) ends this thread's run with its connections counted as connect errors.
      if (!ring_.init(kRingEntries).empty() || !ring_.enable().empty() ||
          !bufs_.init(ring_, kRecvBufferGroup, kRecvBuffers, kRecvBufferBytes).empty()) {
        result_.errors.connect += conns_.size();
        return std::move(result_);
      }
    } else {
      epfd_ = epoll_create1(EPOLL_CLOEXEC);
    }
    for (std::size_t i = 0; i < conns_.size(); ++i) start_connect(i, start_ns_);
    epoll_event events[kMaxEvents];
    for (;;) {
      ns_t now = now_ns();
      if (now >= end_ns_) break;
      ns_t wait = prepare_turn(now);
      if (uring_) {
        if (!uring_wait(wait)) break;
        continue;
      }
      timespec ts{static_cast<time_t>(wait / kNsPerS), static_cast<long>(wait % kNsPerS)};
      int n = epoll_pwait2(epfd_, events, kMaxEvents, &ts, nullptr);
      if (n < 0 && errno != EINTR) break;
      for (int e = 0; e < n; ++e) on_event(events[e].data.u32, events[e].events);
    }
    finish();
    return std::move(result_);
  }

 private:
  // Everything a loop turn does before it waits (either engine): reconnects due, open-loop
  // arrivals, the writes queued since the last turn, reads whose --read-rate pause is over.
  // Returns how long the wait may last (ns).
  ns_t prepare_turn(ns_t now) {
    if (backoff_count_ > 0) retry_connects(now);
    if (cfg_.mode == load_mode::open) generate_arrivals(now);
    flush_dirty();
    ns_t wake = end_ns_;
    if (cfg_.mode == load_mode::open) wake = std::min(wake, next_arrival_ns_);
    if (backoff_count_ > 0) wake = std::min(wake, earliest_reconnect_ns_);
    if (paused_count_ > 0) wake = std::min(wake, resume_reads(now_ns()));
    return std::max<ns_t>(0, wake - now_ns());
  }

  // uring engine: submits the turn's SQEs and waits up to wait_ns for a completion in one
  // io_uring_enter, then handles every completion ready. Returns false if the ring failed.
  bool uring_wait(ns_t wait_ns) {
    __kernel_timespec ts{};
    ts.tv_sec = wait_ns / kNsPerS;
    ts.tv_nsec = wait_ns % kNsPerS;
    io_uring_cqe* cqe = nullptr;
    int rc = io_uring_submit_and_wait_timeout(ring_.raw(), &cqe, 1, &ts, nullptr);
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY) return false;
    // A handler may queue SQEs (they go to the kernel with the next turn's wait) but never waits;
    // late completions of a failed connection are told apart by their generation.
    ring_.for_each_cqe([this](io_uring_cqe* c) { on_completion(c->user_data, c->res, c->flags); });
    return true;
  }

  void on_completion(std::uint64_t user_data, int res, std::uint32_t flags) {
    auto op = static_cast<uring_op>((user_data >> 48) & 0xFF);
    auto gen = static_cast<std::uint32_t>((user_data >> 32) & 0xFFFF);
    std::size_t i = user_data & 0xFFFFFFFFu;
    Conn& c = conns_[i];
    bool current = c.fd >= 0 && (c.generation & 0xFFFF) == gen;
    switch (op) {
      case uring_op::connect_poll:
        if (current && c.state == conn_state::connecting) on_connected(i);
        return;
      case uring_op::send:
        c.send_inflight = false;
        if (!current) {
          c.sending.clear();
          uring_write(i);  // the reopened connection's first requests may be waiting for the slot
          return;
        }
        if (res > 0) {
          c.sending.erase(0, static_cast<std::size_t>(res));
        } else if (res != -EINTR && res != -EAGAIN) {
          ++result_.errors.read;
          fail(i, true);
          return;
        }
        uring_write(i);
        return;
      case uring_op::recv: {
        if ((flags & IORING_CQE_F_MORE) == 0) c.recv_armed = false;
        const char* data = nullptr;
        unsigned buffer_id = 0;
        bool has_buffer = (flags & IORING_CQE_F_BUFFER) != 0;
        if (has_buffer) {
          buffer_id = flags >> IORING_CQE_BUFFER_SHIFT;
          data = bufs_.buffer(buffer_id);
        }
        if (current) {
          on_received(i, res, data);
        } else {
          uring_arm_recv(i);
        }
        if (has_buffer) bufs_.recycle(buffer_id);
        return;
      }
    }
  }

  // uring engine: one receive completion for the current connection on slot i (res bytes at
  // data, 0 for end of stream, or -errno), handled as the epoll engine's recv() results are.
  void on_received(std::size_t i, int res, const char* data) {
    Conn& c = conns_[i];
    if (res > 0) {
      if (cfg_.read_rate_bytes_per_s > 0) c.read_tokens -= res;
      result_.bytes_read += static_cast<std::uint64_t>(res);
      c.in.append(data, static_cast<std::size_t>(res));
      if (!on_bytes(i)) return;
      uring_arm_recv(i);
      return;
    }
    if (res == -ENOBUFS || res == -EINTR || res == -EAGAIN) {  // the buffers are back by the re-arm
      uring_arm_recv(i);
      return;
    }
    if (res == 0) {
      on_end_of_stream(i);
    } else {
      ++result_.errors.read;
      fail(i, true);
    }
  }

  // uring engine: arms the receive of the open connection on slot i unless one is armed (or the
  // failed connection's last one has not completed yet) or --read-rate has paused it. Without a
  // rate the receive is multishot: it stays armed across responses, so a request costs no re-arm.
  void uring_arm_recv(std::size_t i) {
    Conn& c = conns_[i];
    if (c.recv_armed || c.fd < 0 || c.state != conn_state::open || c.read_paused) return;
    // An SQE taken is submitted with whatever it holds: take it only once the receive is certain.
    std::size_t want = cfg_.read_rate_bytes_per_s > 0 ? read_allowance(i) : kRecvBufferBytes;
    if (want == 0) return;  // paused: resume_reads arms it
    io_uring_sqe* sqe = ring_.sqe();
    if (cfg_.read_rate_bytes_per_s > 0) {
      io_uring_prep_recv(sqe, c.fd, nullptr, std::min<std::size_t>(want, kRecvBufferBytes), 0);
    } else {
      io_uring_prep_recv_multishot(sqe, c.fd, nullptr, 0, 0);
    }
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = kRecvBufferGroup;
    io_uring_sqe_set_data64(sqe, pack_user_data(uring_op::recv, c.generation, i));
    c.recv_armed = true;
  }

  // uring engine: hands the slot's queued request bytes to the kernel, unless a send is out (its
  // completion calls this again). Bytes a short send left over go first.
  void uring_write(std::size_t i) {
    Conn& c = conns_[i];
    if (c.send_inflight || c.fd < 0 || c.state != conn_state::open) return;
    if (c.sending.empty()) {
      if (c.out.empty()) return;
      c.sending.swap(c.out);
    }
    io_uring_sqe* sqe = ring_.sqe();
    io_uring_prep_send(sqe, c.fd, c.sending.data(), c.sending.size(), MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, pack_user_data(uring_op::send, c.generation, i));
    c.send_inflight = true;
  }

  ns_t next_gap_ns() {
    if (cfg_.arrivals == arrival_kind::poisson) {
      std::exponential_distribution<double> gap(rate_per_thread_);
      return std::max<ns_t>(1, static_cast<ns_t>(gap(rng_) * kNsPerS));
    }
    return 0;  // unused: constant arrivals are computed from their index, so no rounding drifts
  }

  // Open loop: every arrival due by `now` (and before the end) either goes out on a free
  // connection at once (its lateness is the generator's send lag) or waits in the backlog
  // (its wait counts in its latency, not in the lag: the connections were busy). The lag is
  // taken when the loop hands the request to its connection; the write follows in the same
  // loop turn (flush_dirty), microseconds later.
  void generate_arrivals(ns_t now) {
    while (next_arrival_ns_ <= now && next_arrival_ns_ < end_ns_) {
      ns_t intended = next_arrival_ns_;
      ++result_.scheduled;
      ++arrival_index_;
      active_ns_ = cfg_.arrivals == arrival_kind::poisson
                       ? active_ns_ + next_gap_ns()
                       : static_cast<ns_t>(first_active_ns_ + interval_ns_ * static_cast<double>(arrival_index_));
      next_arrival_ns_ = start_ns_ + cfg_.duty.wall_offset_ns(active_ns_);
      if (backlog_.empty() && !free_.empty()) {
        result_.send_lag.record(static_cast<double>(now - intended) / 1e3);
        send_on(pop_free(), intended);
      } else if (backlog_.size() < kMaxBacklog) {
        backlog_.push_back(intended);
      } else {
        ++result_.errors.backlog_overflow;
      }
    }
  }

  std::size_t pop_free() {
    std::size_t i = free_.front();
    free_.pop_front();
    conns_[i].in_free_list = false;
    return i;
  }

  bool has_room(const Conn& c) const {
    return c.state == conn_state::open && c.inflight_start_ns.size() < static_cast<std::size_t>(cfg_.pipeline);
  }

  // Open loop: a connection with room takes backlog first, else joins the free list.
  void offer_connection(std::size_t i) {
    Conn& c = conns_[i];
    while (has_room(c) && !backlog_.empty()) {
      ns_t intended = backlog_.front();
      backlog_.pop_front();
      send_on(i, intended);
    }
    if (has_room(c) && !c.in_free_list) {
      c.in_free_list = true;
      free_.push_back(i);
    }
  }

  void send_on(std::size_t i, ns_t start) {
    Conn& c = conns_[i];
    c.inflight_start_ns.push_back(start);
    c.out += request_;
    ++c.requests_ever;
    ++result_.sent;
    if (!c.dirty) {
      c.dirty = true;
      dirty_.push_back(i);
    }
  }

  void flush_dirty() {
    for (std::size_t i : dirty_) {
      conns_[i].dirty = false;
      if (conns_[i].state == conn_state::open) do_write(i);
    }
    dirty_.clear();
  }

  void do_write(std::size_t i) {
    if (uring_) {
      uring_write(i);
      return;
    }
    Conn& c = conns_[i];
    while (!c.out.empty()) {
      ssize_t w = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
      if (w > 0) {
        c.out.erase(0, static_cast<std::size_t>(w));
      } else if (w < 0 && errno == EINTR) {
        continue;
      } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        watch(i, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
        return;
      } else {
        ++result_.errors.read;
        fail(i, true);
        return;
      }
    }
    watch(i, EPOLLIN, EPOLL_CTL_MOD);
  }

  // epoll engine only (the uring engine arms receives and sends per operation instead).
  void watch(std::size_t i, std::uint32_t mask, int op) {
    if (uring_) return;
    if (conns_[i].read_paused) mask &= ~static_cast<std::uint32_t>(EPOLLIN);
    if (op == EPOLL_CTL_MOD && conns_[i].watched == mask) return;
    conns_[i].watched = mask;
    epoll_event ev{};
    ev.events = mask;
    ev.data.u32 = static_cast<std::uint32_t>(i);
    epoll_ctl(epfd_, op, conns_[i].fd, &ev);
  }

  void start_connect(std::size_t i, ns_t now) {
    Conn& c = conns_[i];
    c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) {
      ++result_.errors.connect;
      enter_backoff(i, now);
      return;
    }
    int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int r = ::connect(c.fd, reinterpret_cast<const sockaddr*>(&cfg_.target.address), sizeof cfg_.target.address);
    if (r < 0 && errno != EINPROGRESS) {
      ++result_.errors.connect;
      ::close(c.fd);
      c.fd = -1;
      enter_backoff(i, now);
      return;
    }
    c.state = conn_state::connecting;
    c.read_paused = false;
    c.read_tokens = read_quantum_bytes(cfg_.read_rate_bytes_per_s);
    c.tokens_at_ns = now;
    if (uring_) {
      // The connect completes in the kernel; one poll for writability reports it (the only poll
      // this engine makes).
      io_uring_sqe* sqe = ring_.sqe();
      io_uring_prep_poll_add(sqe, c.fd, POLLOUT);
      io_uring_sqe_set_data64(sqe, pack_user_data(uring_op::connect_poll, c.generation, i));
    } else {
      watch(i, EPOLLOUT | EPOLLIN, EPOLL_CTL_ADD);
    }
  }

  void enter_backoff(std::size_t i, ns_t now) {
    Conn& c = conns_[i];
    c.state = conn_state::backoff;
    c.reconnect_at_ns = now + kReconnectDelayNs;
    if (backoff_count_ == 0 || c.reconnect_at_ns < earliest_reconnect_ns_) earliest_reconnect_ns_ = c.reconnect_at_ns;
    ++backoff_count_;
  }

  void retry_connects(ns_t now) {
    if (now < earliest_reconnect_ns_) return;
    backoff_count_ = 0;
    earliest_reconnect_ns_ = end_ns_;
    for (std::size_t i = 0; i < conns_.size(); ++i) {
      Conn& c = conns_[i];
      if (c.state != conn_state::backoff) continue;
      if (c.reconnect_at_ns <= now) {
        ++result_.reconnects;
        start_connect(i, now);
      } else {
        ++backoff_count_;
        earliest_reconnect_ns_ = std::min(earliest_reconnect_ns_, c.reconnect_at_ns);
      }
    }
  }

  // The connection is finished: its outstanding requests are lost (counted as aborted). In open
  // loop their intended times are not re-queued: a lost request is an error, not a retry.
  // with_backoff: an error (wait before reconnecting) rather than a clean idle close.
  void fail(std::size_t i, bool with_backoff) {
    Conn& c = conns_[i];
    result_.errors.aborted += c.inflight_start_ns.size();
    c.inflight_start_ns.clear();
    c.in.clear();
    c.out.clear();
    if (!c.send_inflight) c.sending.clear();  // else the kernel still reads it: its completion clears it
    c.parser.reset();
    if (c.in_free_list) {
      free_.erase(std::find(free_.begin(), free_.end(), i));
      c.in_free_list = false;
    }
    if (c.read_paused) {
      c.read_paused = false;
      --paused_count_;
    }
    if (c.fd >= 0) {
      if (uring_) {
        // A receive or send the kernel holds keeps the socket open past close(); shutting it down
        // first completes them (their late completions carry the old generation) and sends FIN.
        ::shutdown(c.fd, SHUT_RDWR);
      } else {
        epoll_ctl(epfd_, EPOLL_CTL_DEL, c.fd, nullptr);
      }
      ::close(c.fd);
      c.fd = -1;
    }
    ++c.generation;
    ns_t now = now_ns();
    if (with_backoff) {
      enter_backoff(i, now);
    } else {
      ++result_.reconnects;
      start_connect(i, now);
    }
  }

  void on_connected(std::size_t i) {
    Conn& c = conns_[i];
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      ++result_.errors.connect;
      fail(i, true);
      return;
    }
    c.state = conn_state::open;
    c.responses = 0;
    watch(i, EPOLLIN, EPOLL_CTL_MOD);
    if (uring_) uring_arm_recv(i);
    if (cfg_.mode == load_mode::closed) {
      ns_t now = now_ns();
      for (int k = 0; k < cfg_.pipeline; ++k) send_on(i, now);
    } else {
      offer_connection(i);
    }
  }

  void on_event(std::uint32_t index, std::uint32_t mask) {
    std::size_t i = index;
    Conn& c = conns_[i];
    if (c.fd < 0) return;  // closed earlier in this batch
    if (c.state == conn_state::connecting) {
      on_connected(i);
      if (c.state != conn_state::open) return;
    }
    if (mask & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(i);
    if (c.state == conn_state::open && c.fd >= 0 && (mask & EPOLLOUT) && !c.out.empty()) do_write(i);
  }

  // --read-rate: refills c's bucket; returns how many bytes it may read now (all it wants
  // without a rate). With nothing to read, pauses reading (EPOLLIN off) until the bucket holds a
  // quantum again, so the server's writes to this connection back up.
  std::size_t read_allowance(std::size_t i) {
    Conn& c = conns_[i];
    double rate = cfg_.read_rate_bytes_per_s;
    if (rate <= 0) return kReadChunkBytes;
    ns_t now = now_ns();
    double quantum = read_quantum_bytes(rate);
    c.read_tokens = std::min(quantum, c.read_tokens + rate * static_cast<double>(now - c.tokens_at_ns) / kNsPerS);
    c.tokens_at_ns = now;
    // Read only with at least half a quantum in the bucket: with any byte allowed, the refill
    // during a loop turn (4 bytes per us at 4 MB/s) would keep the connection reading a few bytes
    // at a time at CPU speed instead of pausing.
    if (c.read_tokens >= std::max(1.0, quantum / 2)) {
      return std::min(kReadChunkBytes, static_cast<std::size_t>(c.read_tokens));
    }
    c.read_paused = true;
    ++paused_count_;
    c.resume_at_ns = now + static_cast<ns_t>((quantum - c.read_tokens) / rate * kNsPerS);
    watch(i, c.watched, EPOLL_CTL_MOD);
    return 0;
  }

  // Turns reading back on for every paused connection whose bucket has refilled; returns the
  // earliest resume time still pending (end_ns_ when none).
  ns_t resume_reads(ns_t now) {
    ns_t earliest = end_ns_;
    paused_count_ = 0;
    for (std::size_t i = 0; i < conns_.size(); ++i) {
      Conn& c = conns_[i];
      if (!c.read_paused) continue;
      if (c.resume_at_ns <= now) {
        c.read_paused = false;
        if (uring_) uring_arm_recv(i);
        else watch(i, c.out.empty() ? EPOLLIN : EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
      } else {
        ++paused_count_;
        earliest = std::min(earliest, c.resume_at_ns);
      }
    }
    return earliest;
  }

  void on_readable(std::size_t i) {
    Conn& c = conns_[i];
    char* buf = read_buf_.get();
    for (int r = 0; r < kMaxReadsPerEvent; ++r) {
      if (c.read_paused) return;  // an EPOLLHUP/EPOLLERR while paused waits for the resume
      std::size_t want = read_allowance(i);
      if (want == 0) return;
      ssize_t n = ::recv(c.fd, buf, want, 0);
      if (n > 0) {
        if (cfg_.read_rate_bytes_per_s > 0) c.read_tokens -= static_cast<double>(n);
        result_.bytes_read += static_cast<std::uint64_t>(n);
        c.in.append(buf, static_cast<std::size_t>(n));
        if (!on_bytes(i)) return;
        if (static_cast<std::size_t>(n) < want) return;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (n == 0) {
        on_end_of_stream(i);
      } else {
        ++result_.errors.read;
        fail(i, true);
      }
      return;
    }
  }

  // The server closed slot i's connection. A close with nothing outstanding is the server's idle
  // or keep-alive policy: reconnect at once. With requests outstanding it is an error. A close
  // before any response is treated as an error too (with backoff), so a server that accepts and
  // closes at once is not reconnected to at CPU speed.
  void on_end_of_stream(std::size_t i) {
    Conn& c = conns_[i];
    bool outstanding = !c.inflight_start_ns.empty();
    if (outstanding) ++result_.errors.closed;
    fail(i, outstanding || c.responses == 0);
  }

  // Frames every complete response in c.in. Returns false if the connection was failed.
  bool on_bytes(std::size_t i) {
    Conn& c = conns_[i];
    ns_t now = now_ns();
    // The measured window is [start, end): later answers stay unparsed and count as unfinished.
    if (now >= end_ns_) return true;
    std::size_t off = 0;
    bool answered = false;
    for (;;) {
      parse_status s = c.parser.parse(std::string_view(c.in).substr(off));
      if (s == parse_status::partial) break;
      if (s == parse_status::invalid || c.inflight_start_ns.empty()) {
        ++result_.errors.malformed;  // garbage, or a response nobody asked for
        fail(i, true);
        return false;
      }
      off += c.parser.consumed();
      int status = c.parser.status_code();
      c.parser.reset();
      if (status < 200) continue;  // 1xx interim responses precede the real one
      ns_t start = c.inflight_start_ns.front();
      c.inflight_start_ns.pop_front();
      record_response(now, start, status);
      ++c.responses;
      ++c.responses_ever;
      answered = true;
    }
    if (off > 0) c.in.erase(0, off);
    if (answered) {
      if (cfg_.mode == load_mode::closed) {
        while (c.inflight_start_ns.size() < static_cast<std::size_t>(cfg_.pipeline)) send_on(i, now);
      } else {
        offer_connection(i);
      }
    }
    return true;
  }

  // One histogram update per response: into its time slot only. finish() merges the slots into
  // result_.latency (merging adds bucket counts, so the whole-run histogram is exactly what
  // recording every sample twice gave, at half the bucket computations).
  void record_response(ns_t now, ns_t start, int status) {
    double latency_us = static_cast<double>(now - start) / 1e3;
    auto second = static_cast<std::size_t>(std::max<ns_t>(0, now - start_ns_) / slot_ns_);
    if (second >= result_.seconds.size()) second = result_.seconds.size() - 1;
    result_.seconds[second].latency.record(latency_us);
    ++result_.completed;
    if (status < 200 || status > 299) ++result_.non2xx;
  }

  void finish() {
    for (const SecondStats& slot : result_.seconds) result_.latency.merge(slot.latency);
    std::uint64_t unfinished = backlog_.size();
    for (Conn& c : conns_) {
      unfinished += c.inflight_start_ns.size();
      if (c.requests_ever > 0 && c.responses_ever == 0) ++result_.connections_unserved;
      if (c.fd >= 0) ::close(c.fd);
      c.fd = -1;
    }
    result_.unfinished = unfinished;
    if (epfd_ >= 0) ::close(epfd_);
  }

  const LoadConfig& cfg_;
  std::vector<Conn> conns_;
  ns_t start_ns_;
  ns_t end_ns_;
  ns_t slot_ns_ = kNsPerS;
  std::mt19937_64 rng_;
  std::string request_;
  // The thread's one read buffer (a 64 KiB stack array cost a stack-clash probe per page on every
  // readable event); bytes are copied out into the connection's `in` at once.
  std::unique_ptr<char[]> read_buf_{new char[kReadChunkBytes]};
  int epfd_ = -1;
  bool uring_ = cfg_.engine == engine_kind::uring;
  cb::uring::Ring ring_;         // uring engine: the thread's ring
  cb::uring::BufferRing bufs_;   // and the buffers its receives land in
  ThreadResult result_;
  double rate_per_thread_ = 0.0;
  double interval_ns_ = 0.0;
  ns_t next_arrival_ns_ = 0;
  double first_active_ns_ = 0.0;  // open loop: this thread's first arrival, in on-time
  ns_t active_ns_ = 0;             // open loop: the next arrival, in on-time (see DutyCycle)
  std::uint64_t arrival_index_ = 0;
  std::deque<ns_t> backlog_;      // open loop: intended times waiting for a connection
  std::deque<std::size_t> free_;  // open loop: connections with room, in FIFO order (round robin)
  std::vector<std::size_t> dirty_;
  int backoff_count_ = 0;
  int paused_count_ = 0;  // connections with reading paused by --read-rate
  ns_t earliest_reconnect_ns_ = 0;
};

}  // namespace

std::string engine_unavailable(engine_kind engine) {
  if (engine == engine_kind::epoll) return "";
  static const std::string missing = [] {
    std::string m = cb::uring::probe();
    return m.empty() ? cb::uring::probe_recv_multishot() : m;
  }();
  return missing;
}

namespace {

double process_cpu_s() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

void merge_into(ThreadResult& total, ThreadResult& part) {
  total.latency.merge(part.latency);
  total.send_lag.merge(part.send_lag);
  if (total.seconds.size() < part.seconds.size()) total.seconds.resize(part.seconds.size());
  for (std::size_t s = 0; s < part.seconds.size(); ++s) total.seconds[s].latency.merge(part.seconds[s].latency);
  total.errors.connect += part.errors.connect;
  total.errors.read += part.errors.read;
  total.errors.closed += part.errors.closed;
  total.errors.malformed += part.errors.malformed;
  total.errors.aborted += part.errors.aborted;
  total.errors.backlog_overflow += part.errors.backlog_overflow;
  total.scheduled += part.scheduled;
  total.sent += part.sent;
  total.completed += part.completed;
  total.non2xx += part.non2xx;
  total.unfinished += part.unfinished;
  total.reconnects += part.reconnects;
  total.connections_unserved += part.connections_unserved;
  total.bytes_read += part.bytes_read;
}

}  // namespace

// Threading: each thread owns its Worker (connections, epoll set, histograms) outright. The
// threads share only `config` (read-only) and each writes only its own `parts` slot, which the
// caller reads after join(): there is nothing to synchronise. (A ThreadSanitizer build at
// --threads 4, closed loop, open loop with Poisson arrivals, pipelined and --read-rate, reports
// nothing.)
LoadResult run_load(const LoadConfig& config) {
  LoadResult out;
  out.config = config;
  // Connections are dealt to threads as evenly as possible; a little start-up slack (10 ms) lets
  // every thread reach its loop before the first intended send.
  ns_t start = now_ns() + 10'000'000;
  if (config.start_at_realtime_ns > 0) {
    auto realtime = std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::system_clock::now().time_since_epoch()).count();
    start = now_ns() + std::max<ns_t>(0, config.start_at_realtime_ns - realtime);
  }
  ns_t end = start + static_cast<ns_t>(config.duration_s * kNsPerS);
  std::vector<ThreadResult> parts(static_cast<std::size_t>(config.threads));
  std::vector<std::thread> threads;
  double cpu0 = process_cpu_s();
  for (int t = 0; t < config.threads; ++t) {
    int conns = config.connections / config.threads + (t < config.connections % config.threads ? 1 : 0);
    threads.emplace_back([&, t, conns] {
      Worker w(config, t, conns, start, end);
      parts[static_cast<std::size_t>(t)] = w.run();
    });
  }
  for (auto& th : threads) th.join();
  // The window is exactly [start, end): nothing is counted outside it (see on_bytes).
  out.elapsed_s = static_cast<double>(end - start) / kNsPerS;
  out.active_s = static_cast<double>(config.duty.active_ns(end - start)) / kNsPerS;
  out.cpu_s = process_cpu_s() - cpu0;
  for (auto& p : parts) merge_into(out.total, p);
  return out;
}

}  // namespace cb::loadgen
