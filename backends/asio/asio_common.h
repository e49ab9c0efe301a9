// What the asio and asio-coro models share: their executor types, the adoption of main's
// listener, and running the io_context on --threads threads until the stop. Header-only (the
// models are the only users, and Asio is header-only). A helper of this family of models only:
// it sits above backends/server (it runs a model), below servers/.
#pragma once
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "backends/net/accept.h"
#include "backends/server/model.h"
#include "backends/server/threads.h"

namespace cb::asio_common {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

// A connection's executor, as a concrete type: Boost 1.74's any_io_executor keeps only 16 bytes
// in place, and a strand (32 bytes) stored in it is copied to the heap on every handler.
using Strand = asio::strand<asio::io_context::executor_type>;
using Socket = tcp::socket::rebind_executor<Strand>::other;
using Timer = asio::steady_timer::rebind_executor<Strand>::other;

using Clock = std::chrono::steady_clock;

// A connection's socket and its idle deadline, as both models keep them. The timer sleeps until
// `deadline`, which a completed request moves forward (renew: a store, no timer operation per
// request); when it fires with the deadline passed, the model closes the connection. Used on the
// connection's strand only. One per accepted connection: its destruction, which closes the socket
// if it is still open, is counted as the connection's close (net::count_closed).
struct IdleSocket {
  IdleSocket(Socket s, std::chrono::milliseconds timeout)
      : socket(std::move(s)), idle_timer(socket.get_executor()), idle_timeout(timeout),
        deadline(Clock::now() + timeout) {}
  ~IdleSocket() { net::count_closed(); }
  IdleSocket(const IdleSocket&) = delete;
  IdleSocket& operator=(const IdleSocket&) = delete;

  void renew() { deadline = Clock::now() + idle_timeout; }

  // Closes the socket (a pending read or write completes with operation_aborted) and cancels the
  // idle timer (its wait completes with operation_aborted).
  void close() {
    error_code ignored;
    socket.close(ignored);
    idle_timer.cancel();
  }

  Socket socket;  // its executor is this connection's strand
  Timer idle_timer;
  const std::chrono::milliseconds idle_timeout;
  Clock::time_point deadline;  // no completed request since deadline - idle_timeout
};

// Adopts a dup of main's listener into `acceptor` (the acceptor closes the descriptor it owns;
// main closes its own). Returns an empty string or the failure with its context.
inline std::string adopt_listener(tcp::acceptor& acceptor, int listen_fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (::getsockname(listen_fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    return std::string("getsockname: ") + std::strerror(errno);
  int fd = ::dup(listen_fd);
  if (fd < 0) return std::string("dup: ") + std::strerror(errno);
  error_code ec;
  acceptor.assign(addr.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), fd, ec);
  if (ec) {
    ::close(fd);
    return "unable to adopt the listener: " + ec.message();
  }
  return {};
}

// Runs io on `threads` threads (server::run_on_threads) until the stop, which Control::on_stop
// turns into io_context::stop() (thread-safe, non-blocking): every run() returns after the handler
// in hand. io is shared with that stop function, which may still be returning from stop() when the
// threads have seen the stop and been joined. Returns the model's exit status.
inline int run_io_context(std::string_view model, int threads, const std::shared_ptr<asio::io_context>& io,
                          server::Control& control) {
  control.on_stop([io] { io->stop(); });
  asio::io_context& ctx = *io;
  return server::run_on_threads(model, threads, [&ctx](int) { ctx.run(); }, [&ctx] { ctx.stop(); });
}

}  // namespace cb::asio_common
