// Model: asio-coro (Boost.Asio with C++20 coroutines).
//
// The same io_context and threads as `asio`, but each connection is one coroutine written
// forward, like a thread-per-connection loop: read, feed the codec, write, loop. Every co_await
// on a socket suspends only that connection's coroutine frame; the thread goes back to the
// io_context and runs whichever connection is ready. This is the "write forward, stay evented"
// answer that the EventMachine interview hoped fibers would give: code shaped like the blocking
// model, scheduling of the evented one, and no callback chain holding state between steps
// (the state is the coroutine's locals). C++20 coroutines are stackless, so a suspended
// connection costs its frame (the read buffer, codec and strings below), not a stack.
//
//   listen():     co_await async_accept -> spawn serve() and watch_idle() on a new strand -> loop
//   serve():      co_await async_read_some -> Pump::feed -> co_await async_write -> loop
//   watch_idle(): co_await the idle timer -> close the socket if no request completed meanwhile
//
// Backpressure: serve() never reads while it writes; the pump (backends/http/pump.h, shared by
// every model) stops parsing at the output high-water mark, holds the unparsed rest, and parses
// it as its output is consumed, before the next read.
// Memory (buffer ownership that differs from the readiness models): the read buffer lives in the
// coroutine frame, one per connection, because the read in flight owns it; the pump stages
// responses in its own buffer (Pump::feed without a staging buffer), because async_write sends
// from it while the thread runs other connections. Both are part of this model's cost. Errors come back through redirect_error into an error_code,
// so nothing throws on the hot path (Boost 1.74 has redirect_error; as_tuple came in 1.77).
//
// --threads N: N threads run the one io_context, as for asio. Each connection's two coroutines
//   share a strand, so they never run at the same time; different connections run in parallel.
// /sleep: blocks the thread that resumed that coroutine; the other N - 1 threads go on serving
//   every other connection. N concurrent sleepers stall the server.
// /spin: the same for CPU; with N >= cores the kernel time-slices the busy threads.
// Idle timeout: watch_idle() sleeps until the connection's deadline, which serve() moves forward
//   on each completed request (a store, no timer operation per request); at the deadline it
//   closes the socket, which ends serve()'s pending read with operation_aborted.
// EMFILE: listen() gets no_descriptors and waits net::kAcceptRetryDelay before accepting again.
//   Asio accepts, not net::Acceptor: listen() counts accepts (net::count_accepted), and a
//   Connection counts its close when it is destroyed (asio_common::IdleSocket).
// Stop: Control::on_stop calls io_context::stop(); every run() returns after the handler in hand
//   (at worst a /sleep of kMaxSleepMs); run() joins the threads, and destroying the io_context
//   destroys the suspended coroutine frames, which closes their sockets.
#include <sys/socket.h>
#include <unistd.h>

#include <utility>  // first: Boost 1.74's awaitable.hpp uses std::exchange without including it

#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
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
using asio::awaitable;
using asio::redirect_error;
using asio::use_awaitable;
using asio::ip::tcp;
using boost::system::error_code;
using asio_common::Clock;

using asio_common::Socket;
using asio_common::Strand;
constexpr asio::use_awaitable_t<Strand> on_strand;

// What serve() and watch_idle() share (the socket, its idle timer and deadline). Both run on the
// socket's strand. Destroyed, and counted as closed, when both have ended or their frames are
// destroyed at the stop.
using Connection = asio_common::IdleSocket;

awaitable<void, Strand> serve(std::shared_ptr<Connection> c) {
  std::array<char, http::kReadBufferBytes> buffer;  // in the frame: one per connection
  http::Pump pump;  // its own output buffer: async_write sends from it
  error_code ec;
  while (pump.state() != http::pump_state::close) {
    std::size_t n = co_await c->socket.async_read_some(asio::buffer(buffer), redirect_error(on_strand, ec));
    if (ec) break;  // eof, reset, or operation_aborted after an idle close
    pump.feed({buffer.data(), n});
    // Writes the output; consuming it lets the pump parse what the high-water mark held back.
    while (pump.state() == http::pump_state::write) {
      if (pump.take_progress()) c->renew();
      std::string_view out = pump.output();
      co_await asio::async_write(c->socket, asio::buffer(out.data(), out.size()), redirect_error(on_strand, ec));
      if (ec) break;
      pump.consumed(out.size());
    }
    if (ec) break;
    if (pump.take_progress()) c->renew();
  }
  c->close();
}

awaitable<void, Strand> watch_idle(std::shared_ptr<Connection> c) {
  error_code ec;
  while (c->socket.is_open()) {
    c->idle_timer.expires_at(c->deadline);
    co_await c->idle_timer.async_wait(redirect_error(on_strand, ec));
    if (c->deadline <= Clock::now()) c->close();  // else: a request completed; sleep again
  }
}

awaitable<void> listen(asio::io_context& io, tcp::acceptor& acceptor, std::chrono::milliseconds idle_timeout) {
  asio::steady_timer retry_timer(acceptor.get_executor());
  error_code ec;
  for (;;) {
    Socket socket = co_await acceptor.async_accept(asio::make_strand(io),
                                                        redirect_error(use_awaitable, ec));
    if (!ec) {
      net::count_accepted();
      error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      auto c = std::make_shared<Connection>(std::move(socket), idle_timeout);
      asio::co_spawn(c->socket.get_executor(), serve(c), asio::detached);
      asio::co_spawn(c->socket.get_executor(), watch_idle(c), asio::detached);
      continue;
    }
    if (ec == asio::error::operation_aborted) co_return;  // the acceptor is closing
    if (ec == asio::error::connection_aborted) continue;  // that client left
    // Out of descriptors (no_descriptors, no_buffer_space, no_memory) or worse: pause.
    retry_timer.expires_after(net::kAcceptRetryDelay);
    co_await retry_timer.async_wait(redirect_error(use_awaitable, ec));
  }
}

int run(const server::Options& opt, server::Control& control) {
  // Shared with the stop function, which may still be returning from io_context::stop() when the
  // threads have seen the stop and been joined. The concurrency hint is the number of threads.
  auto io_owner = std::make_shared<asio::io_context>(opt.threads);
  asio::io_context& io = *io_owner;
  tcp::acceptor acceptor(io);
  std::string err = asio_common::adopt_listener(acceptor, control.listeners().front());
  if (!err.empty()) {
    std::fprintf(stderr, "cbench-server: asio-coro: %s\n", err.c_str());
    return 1;
  }
  asio::co_spawn(io, listen(io, acceptor, std::chrono::milliseconds(opt.idle_timeout_ms)), asio::detached);
  return asio_common::run_io_context("asio-coro", opt.threads, io_owner, control);
}

}  // namespace

CBENCH_REGISTER_MODEL(asio_coro, "asio-coro",
                      "Boost.Asio C++20 coroutines: one forward-written coroutine per connection, one io_context run by N threads",
                      server::ListenerLayout::one, &run)
