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
