// Model: asio (Boost.Asio with completion handlers, in the shape of Asio's http/server3 example).
//
// One io_context, run by --threads threads: a proactor whose completion handlers may run on any
// of them. An acceptor (adopting main's listener) keeps one async_accept outstanding; each
// accepted socket gets its own strand, so the handlers of one connection never run at the same
// time, while different connections run on different threads. A Connection (kept alive by the
// shared_ptr that each pending handler holds, shared_from_this) chains:
//   async_read_some into its fixed kReadBufferBytes buffer -> Pump::feed -> async_write of
//   Pump::output() -> Pump::consumed -> ...
// It never reads and writes at once, so a client that does not read stops being read from
// (backpressure): the pump (backends/http/pump.h, shared by every model) stops parsing at the
// output high-water mark, holds the unparsed rest, and parses it when the write completes,
// before the next read. Keep-alive and pipelining come from the codec. Errors travel as error_code
// (the overloads without exceptions); nothing throws on the hot path.
//
// Memory (buffer ownership that differs from the readiness models): as in server3, the read
// buffer belongs to the connection (16 KiB each, idle or not), the price of a read that is in
// flight for as long as the connection is open; and the pump stages responses in its own
// per-connection buffer (Pump::feed without a staging buffer), because async_write sends from it
// after this handler has returned. Both are part of this model's cost per connection.
//
// --threads N: N threads run the one io_context (server3's thread pool). One of them at a time
//   waits in epoll_wait (Asio's reactor task) and queues the ready handlers; the others take
//   them from the shared queue, so a connection's handlers go to any thread, one at a time.
// /sleep: blocks the thread running that handler; the other N - 1 threads go on serving every
//   other connection. N concurrent sleepers stall the server.
// /spin: the same for CPU; with N >= cores the kernel time-slices the busy threads.
// Idle timeout: one steady_timer per connection (Asio's idiom), sharing the connection's strand.
//   A completed request only moves the deadline forward (a store, no timer operation per request);
//   the timer, when it fires, closes the connection if the deadline has passed and otherwise
//   waits again until the new deadline: one wake-up per idle-timeout period per connection,
//   instead of a cancel and a re-arm per request.
// EMFILE: the accept handler gets no_descriptors and waits net::kAcceptRetryDelay on a timer before
//   accepting again; no spin, no exit. Asio accepts (one at a time), not net::Acceptor: the accept
//   handler counts accepts (net::count_accepted), and a Connection counts its close when it is
//   destroyed (asio_common::IdleSocket).
// Stop: Control::on_stop calls io_context::stop() (thread-safe, non-blocking); every run()
//   returns after the handler in hand (at worst a /sleep of kMaxSleepMs); run() joins the threads,
//   and destroying the io_context destroys the pending handlers and with them every Connection,
//   closing its socket.
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include "backends/asio/asio_common.h"
#include "backends/http/pump.h"
#include "backends/net/accept.h"
#include "backends/http/limits.h"
#include "backends/server/model.h"
#include "backends/server/threads.h"

namespace {

using namespace cb;
namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
using asio_common::Clock;

using asio_common::Socket;

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Socket socket, std::chrono::milliseconds idle_timeout)
      : sock_(std::move(socket), idle_timeout) {}

  // Called by the acceptor's handler, which is not on this connection's strand: the first steps
  // go through the strand like every later one. Run directly, the idle timer armed here could
  // fire (on another thread, on the strand) and close the socket while this thread was still
  // starting the first read: ThreadSanitizer reported that race with --idle-timeout-ms 1.
  void start() {
    asio::dispatch(sock_.socket.get_executor(), [self = shared_from_this()] { self->begin(); });
  }

 private:
  void begin() {
    error_code ignored;
    sock_.socket.set_option(tcp::no_delay(true), ignored);
    sock_.renew();
    wait_idle();
    do_read();
  }

  void do_read() {
    sock_.socket.async_read_some(asio::buffer(buffer_), [self = shared_from_this()](const error_code& ec, std::size_t n) {
      self->on_read(ec, n);
    });
  }

  void on_read(const error_code& ec, std::size_t n) {
    if (ec) return stop();  // eof, reset, or operation_aborted after an idle close
    pump_.feed({buffer_.data(), n});
    next();
  }

  // Follows the pump: write its output, read more, or close after a closing response.
  void next() {
    if (pump_.take_progress()) sock_.renew();
    switch (pump_.state()) {
      case http::pump_state::write: return do_write();
      case http::pump_state::read: return do_read();
      case http::pump_state::close: return stop();
    }
  }

  // output() stays unchanged until consumed(), so async_write may send from it.
  void do_write() {
    std::string_view out = pump_.output();
    asio::async_write(sock_.socket, asio::buffer(out.data(), out.size()),
                      [self = shared_from_this()](const error_code& ec, std::size_t n) { self->on_write(ec, n); });
  }

  void on_write(const error_code& ec, std::size_t n) {
    if (ec) return stop();
    pump_.consumed(n);  // all of it: async_write completes only when every byte is sent
    next();
  }

  // Sleeps until sock_.deadline; closes the connection if it has not moved since, else sleeps again.
  void wait_idle() {
    sock_.idle_timer.expires_at(sock_.deadline);
    sock_.idle_timer.async_wait([self = shared_from_this()](const error_code& ec) {
      if (ec || !self->sock_.socket.is_open()) return;  // cancelled by stop()
      if (self->sock_.deadline <= Clock::now()) self->stop();
      else self->wait_idle();
    });
  }

  // Closes the socket (a pending read completes with operation_aborted) and cancels the timer;
  // the last handler to finish releases the Connection (and counts its close: IdleSocket).
  void stop() { sock_.close(); }

  asio_common::IdleSocket sock_;  // the socket, its idle timer and deadline
  std::array<char, http::kReadBufferBytes> buffer_;  // owned by the read in flight (see Memory)
  http::Pump pump_;  // its own output buffer: async_write sends from it
};

class Server {
 public:
  Server(asio::io_context& io, std::chrono::milliseconds idle_timeout)
      : io_(io), acceptor_(io), retry_timer_(io), idle_timeout_(idle_timeout) {}

  // Adopts main's listener (asio_common::adopt_listener) and starts accepting. Returns an empty
  // string or the failure with its context.
  std::string open(int listen_fd) {
    std::string err = asio_common::adopt_listener(acceptor_, listen_fd);
    if (err.empty()) start_accept();
    return err;
  }

 private:
  void start_accept() {
    acceptor_.async_accept(asio::make_strand(io_), [this](const error_code& ec, Socket socket) {
      on_accept(ec, std::move(socket));
    });
  }

  void on_accept(const error_code& ec, Socket socket) {
    if (!ec) {
      net::count_accepted();
      std::make_shared<Connection>(std::move(socket), idle_timeout_)->start();
      return start_accept();
    }
    if (ec == asio::error::operation_aborted) return;  // the acceptor is closing
    if (ec == asio::error::connection_aborted) return start_accept();  // that client left
    // Out of descriptors (no_descriptors, no_buffer_space, no_memory) or worse: pause.
    retry_timer_.expires_after(net::kAcceptRetryDelay);
    retry_timer_.async_wait([this](const error_code& wait_ec) {
      if (!wait_ec) start_accept();
    });
  }

  asio::io_context& io_;
  tcp::acceptor acceptor_;  // one accept outstanding at a time, so its handlers never overlap
  asio::steady_timer retry_timer_;
  const std::chrono::milliseconds idle_timeout_;
};

int run(const server::Options& opt, server::Control& control) {
  // Shared with the stop function, which may still be returning from io_context::stop() when the
  // threads have seen the stop and been joined. The concurrency hint is the number of threads.
  auto io_owner = std::make_shared<asio::io_context>(opt.threads);
  asio::io_context& io = *io_owner;
  Server server(io, std::chrono::milliseconds(opt.idle_timeout_ms));
  std::string err = server.open(control.listeners().front());
  if (!err.empty()) {
    std::fprintf(stderr, "cbench-server: asio: %s\n", err.c_str());
    return 1;
  }
  return asio_common::run_io_context("asio", opt.threads, io_owner, control);
}

}  // namespace

CBENCH_REGISTER_MODEL(asio, "asio",
                      "Boost.Asio completion handlers: one io_context run by N threads, a strand per connection (server3)",
                      server::ListenerLayout::one, &run)
