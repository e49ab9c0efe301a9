// The HTTP side of an io_uring connection (uring::Loop's Session parameter): the shared request
// pump in its own-buffer form. A send in flight points into the pump's output until its
// completion calls consumed(), so the output buffer is the connection's, not a per-thread one.
// servers/io_uring.cpp serves with it; tests/unit/uring_loop_test.cpp drives the same session.
#pragma once

#include <cstddef>
#include <string_view>

#include "backends/http/pump.h"

namespace cb::uring {

class HttpSession {
 public:
  struct Context {};
  explicit HttpSession(Context&) {}

  http::pump_state feed(Context&, std::string_view in) { return pump_.feed(in); }
  std::string_view output() const { return pump_.output(); }
  http::pump_state consumed(std::size_t n) { return pump_.consumed(n); }
  bool take_progress() { return pump_.take_progress(); }
  bool reads_after_output() const { return pump_.reads_after_output(); }
  static void on_tick(Context&) {}

 private:
  http::Pump pump_;
};

}  // namespace cb::uring
