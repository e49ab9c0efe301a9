// The one seam between cbench-server and a concurrency model. A model is a function that serves
// HTTP on listeners it is given until it is told to stop; it registers itself by name.
#pragma once
#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "backends/loop/backend.h"

namespace cb::server {

enum class QueueLayout { shared, per_worker };
enum class Rearm { level, oneshot };
enum class UringRecv { single, multishot };  // io-uring's receive mode (servers/io_uring.cpp)

// Command-line options, parsed and validated by main before a model runs.
struct Options {
  std::string model;
  std::string host = "127.0.0.1";
  int port = 8080;
  int threads = 1;                      // meaning is per model; each model's file header says it
  QueueLayout queues = QueueLayout::shared;
  bool gvl = false;                     // emulate Ruby's global VM lock (worker-pool)
  loop::Backend backend = loop::Backend::libev;  // pull loop implementation (--backend libev|epoll)
  int idle_timeout_ms = 30'000;         // close connections without a completed request this long
  int listen_backlog = 4096;            // above wrk's largest burst of connects in the scenarios
  bool trace_writes = false;            // --trace-writes: http::Pump prints every write size (tests)
  // Issue 14 (selector-pool, fiber):
  Rearm rearm = Rearm::level;           // selector-pool: monitor left armed (nio4r) or disarmed before dispatch
  int stack_kb = 64;                    // fiber: stack size of each connection's fiber
  int test_worker_delay_us = 0;         // selector-pool, tests only: a worker sleeps this long before
                                        // it reads a dispatched connection (forces duplicate dispatch)
  // Cluster mode and keep-alive policy (issue 15; backends/server/cluster.h, http/codec.h).
  int processes = 0;                    // 0: this process serves; N: N forked workers serve
  bool keep_alive = true;               // false: every response closes its connection (Unicorn)
  // Issue 16: io-uring's receives (--uring-recv): one per read state, or one multishot kept armed.
  UringRecv uring_recv = UringRecv::single;
};

// Stop requests and listeners, shared by main and the running model.
class Control {
 public:
  explicit Control(std::vector<int> listeners) : listeners_(std::move(listeners)) {}

  // Listening sockets (blocking): one, or one per thread for models that ask for SO_REUSEPORT.
  const std::vector<int>& listeners() const { return listeners_; }

  // Registers fn to be called once, from the signal thread, when the server must stop (or at
  // once if it already must). fn must be thread-safe and must not block: it wakes the model
  // (eventfd write, ev_async_send, uv_async_send, io_context::stop, shutdown of a socket).
  void on_stop(std::function<void()> fn);

  // True once a stop was requested.
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }

  // Requests a stop: sets stopping() and calls the registered functions. Idempotent.
  void request_stop();

 private:
  std::vector<int> listeners_;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::vector<std::function<void()>> on_stop_;
};

enum class ListenerLayout { one, per_thread };

// What tools need to know about a model besides its name, as data (printed by --list), never as
// words in its summary.
struct ModelTraits {
  // Serves at most --threads connections at a time; the others wait in the listen backlog
  // (blocking-pool). The conformance suite skips the cases that need more and checks the wait.
  bool bounded = false;
  // Not a concurrency model but a measuring instrument (floor): parses nothing, so it is left out
  // of the conformance gate, and tables label it.
  bool instrument = false;
};

struct ModelSpec {
  std::string_view name;
  std::string_view summary;   // one line, for --list
  ListenerLayout listeners = ListenerLayout::one;
  // Serves until control.stopping(); returns the process exit status (0 after a normal stop).
  int (*run)(const Options&, Control&) = nullptr;
  ModelTraits traits{};       // e.g. CBENCH_REGISTER_MODEL(..., &run, {.bounded = true})
  // Optional (issue 16): checks, before any listener opens, that this machine offers what the
  // model needs with these options. Returns "" or one line naming what is missing; main then
  // prints it and exits kExitUnsupported.
  std::string (*probe)(const Options&) = nullptr;
};

// The traits column of --list: "bounded", "instrument", both joined by ',', or "-" for none.
std::string traits_text(const ModelTraits& traits);

// Exit status of a model this kernel cannot run (its probe failed): ctest reports the
// conformance run as skipped (SKIP_RETURN_CODE), neither passed nor failed.
inline constexpr int kExitUnsupported = 77;

// Models register at static-initialisation time (CBENCH_REGISTER_MODEL); --list prints them
// sorted by name, one per line: NAME <tab> TRAITS <tab> SUMMARY (traits_text; a stable format
// that tests/conformance/discover.cmake, conformance.py and the sweep parse).
class Registry {
 public:
  static bool add(const ModelSpec& spec);
  static std::vector<ModelSpec> all();
  static const ModelSpec* find(std::string_view name);
};

}  // namespace cb::server

#define CBENCH_REGISTER_MODEL(ident, ...) \
  namespace {                             \
  [[maybe_unused]] const bool ident##_registered = ::cb::server::Registry::add(::cb::server::ModelSpec{__VA_ARGS__}); \
  }
