// Instrument: floor (the system-call floor of this machine). Not a concurrency model.
//
// The least a server can do per request and still look like one to wrk: one epoll thread per
// --threads, each on its own SO_REUSEPORT listener, that reads what a connection sent, counts the
// request terminators in it ("\r\n\r\n", found across read boundaries) and answers each one with
// the same canned bytes, all the answers to one read gathered into one send. It parses nothing
// (no method, path, header or body: any request gets the hello response, and a request with a
// body would be answered wrongly), enforces no limit and has no idle timeout, so it is excluded
// from the conformance gate (it registers with the instrument trait, which --list prints) and tables label it
// as an instrument. What it measures: the cost of epoll_wait + read + send per batch on this
// kernel, which no model can go below. A model's distance from it is the cost of its parsing,
// handler and concurrency model.
//
// Why a readiness model can read below it, and why that is no cheaper path: per request the floor
// makes one recv and one send, and one epoll_wait per batch of ready connections, with no
// epoll_ctl (the watch never changes while the answers fit the socket). libuv makes exactly the
// same calls (read and write instead of recv and send, one read per readiness event because a read
// shorter than its buffer ends libuv's read loop, uv_try_write, no epoll_ctl: strace and perf's
// syscalls:sys_enter_* per request, GET / at -t2 -c64: floor 1 recvfrom + 1 sendto + 0.07-0.47
// epoll_wait, libuv 1 read + 1 write + 0.06-0.34 epoll_wait), and spends twice the floor's user
// CPU per request (0.54-0.61 us against 0.24-0.29, `cbench breakdown`). About two thirds of either
// row's CPU per request is the kernel's TCP path, and the rest falls as the batch (requests per
// epoll_wait) grows and the wake-ups per request fall: the batch is set by how fast the generator
// answers and by whatever else runs on the server's CPU, not by the model, and it moved by 7x
// between repetitions of one row on the shared machine. A row below the floor is that batch
// effect: read it beside its system calls and context switches per request (scenarios/
// floor-costs.toml, design finding FC1, shows them with each comparison).
//
// The canned answer and the terminator counting are shared with floor-uring
// (backends/http/canned_answer.h): this file holds only the epoll side. The canned bytes are
// exactly a model's answer to GET /; their Date is re-made when the second changes, checked on
// every reactor tick.
//
// --threads N: N reactor threads (server::run_on_threads, as multi-reactor), N listeners.
// EMFILE: net::Acceptor unwatches the listener until the next tick; accepts and closes are
// counted as in every model (net::Acceptor, net::close_connection).
// Stop: Control::on_stop wakes every reactor; each closes its connections and returns.
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>

#include "backends/http/canned_answer.h"
#include "backends/net/accept.h"
#include "backends/net/reactor.h"
#include "backends/net/socket.h"
#include "backends/server/model.h"
#include "backends/server/threads.h"

namespace {

using namespace cb;
using http::TerminatorCounter;

// One read per readiness event into this buffer: larger than any batch wrk sends to a connection
// at pipelining depth 16 (16 x ~60 bytes), and a full buffer just leaves the socket readable.
constexpr std::size_t kReadBufferBytes = 64 * 1024;
// Reactor tick: how stale the canned Date may get (it is re-made when the second changes), and
// how soon a listener paused on EMFILE is watched again.
constexpr std::chrono::milliseconds kTick{200};

class FloorLoop;

// One client: its terminator state and, while the socket is full, the bytes still to send.
class Connection final : public net::Reactor::Handler {
 public:
  Connection(FloorLoop& loop, int fd) : loop_(loop), fd_(fd) {}
  bool on_readable() override;
  bool on_writable() override;

  int fd() const { return fd_; }
  Connection* prev = nullptr;  // the loop's list of open connections (closed at stop)
  Connection* next = nullptr;

 private:
  bool send_or_queue(const char* data, std::size_t len);

  FloorLoop& loop_;
  int fd_;
  TerminatorCounter terminators_;
  std::string pending_;  // unsent response bytes; the connection is not read while non-empty
};

// One thread's reactor, listener, buffers and canned response.
class FloorLoop final : public net::Reactor::Handler {
 public:
  explicit FloorLoop(int listen_fd) : listen_fd_(listen_fd), read_buf_(new char[kReadBufferBytes]) {
    out_.reserve(16 * 1024);  // grows to the largest batch, then stays
    ok_ = reactor_.ok() && net::set_nonblocking(listen_fd_) && reactor_.add(listen_fd_, this, true, false);
  }
  ~FloorLoop() override {
    while (head_ != nullptr) close(head_);
  }

  bool ok() const { return ok_; }
  void stop() { reactor_.stop(); }

  int run() {
    canned_.refresh();
    reactor_.run(kTick, [this] { on_tick(); });
    while (head_ != nullptr) close(head_);
    return 0;
  }

  // The listener is readable: the acceptor takes a bounded batch; out of descriptors, the listener
  // is unwatched until the next tick.
  bool on_readable() override {
    acceptor_.on_readable(
        [this](int fd) {
          auto* c = new Connection(*this, fd);
          if (!reactor_.add(fd, c, true, false)) {
            net::close_connection(fd);
            delete c;
            return;
          }
          c->next = head_;
          if (head_ != nullptr) head_->prev = c;
          head_ = c;
        },
        [this] { reactor_.remove(listen_fd_); });
    return true;
  }

  // Reads into the loop's buffer; returns bytes read, 0 at EOF, -1 on error or nothing to read.
  ssize_t read_into_buffer(int fd) {
    for (;;) {
      ssize_t n = ::recv(fd, read_buf_.get(), kReadBufferBytes, 0);
      if (n >= 0 || errno != EINTR) return n;
    }
  }
  const char* read_buffer() const { return read_buf_.get(); }

  // The canned answers to the next n bytes of a connection's stream, contiguous in the loop's output
  // buffer (valid until the next call); len = 0 when they hold no complete request.
  const char* answers(TerminatorCounter& terminators, const char* in, std::size_t n, std::size_t& len) {
    out_.clear();
    canned_.answer(terminators, in, n, out_);
    len = out_.size();
    return out_.data();
  }

  void set_writable(Connection& c, bool writable) { reactor_.modify(c.fd(), &c, !writable, writable); }

  void close(Connection* c) {
    reactor_.remove(c->fd());
    net::close_connection(c->fd());
    if (c->prev != nullptr) c->prev->next = c->next;
    else head_ = c->next;
    if (c->next != nullptr) c->next->prev = c->prev;
    delete c;
  }

 private:
  void on_tick() {
    canned_.refresh();
    acceptor_.on_sweep([this] { return reactor_.add(listen_fd_, this, true, false); });
  }

  int listen_fd_;
  net::Reactor reactor_;
  std::unique_ptr<char[]> read_buf_;
  std::string out_;  // one read's answers
  http::CannedAnswer canned_;
  Connection* head_ = nullptr;
  net::Acceptor acceptor_{listen_fd_};
  bool ok_ = false;
};

bool Connection::on_readable() {
  ssize_t n = loop_.read_into_buffer(fd_);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
  if (n <= 0) {
    loop_.close(this);
    return false;
  }
  std::size_t len = 0;
  const char* out = loop_.answers(terminators_, loop_.read_buffer(), static_cast<std::size_t>(n), len);
  if (len == 0) return true;
  if (!pending_.empty()) {  // woken by EPOLLRDHUP while still writing: keep the order
    pending_.append(out, len);
    return true;
  }
  return send_or_queue(out, len);
}

bool Connection::on_writable() {
  ssize_t n;
  do n = ::send(fd_, pending_.data(), pending_.size(), MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
  if (n < 0) {
    loop_.close(this);
    return false;
  }
  pending_.erase(0, static_cast<std::size_t>(n));
  if (pending_.empty()) loop_.set_writable(*this, false);
  return true;
}

bool Connection::send_or_queue(const char* data, std::size_t len) {
  ssize_t n;
  do n = ::send(fd_, data, len, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
    loop_.close(this);
    return false;
  }
  const std::size_t sent = n < 0 ? 0 : static_cast<std::size_t>(n);
  if (sent < len) {
    pending_.assign(data + sent, len - sent);
    loop_.set_writable(*this, true);
  }
  return true;
}

int run(const server::Options&, server::Control& control) {
  return server::run_loop_per_listener<FloorLoop>("floor", control);
}

}  // namespace

CBENCH_REGISTER_MODEL(floor_instrument, "floor",
                      "syscall floor, not a model: one epoll thread per --threads counts request "
                      "terminators and sends the canned GET / bytes for each, a read's answers in one send; no parsing",
                      server::ListenerLayout::per_thread, &run, {.instrument = true})
