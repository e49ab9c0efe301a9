// The one seam between cbench-server and a concurrency model. A model is a function that serves
// HTTP on listeners it is given until it is told to stop; it registers itself by name.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cb::server {

// How a model's own option takes its value on the command line.
enum class ArgKind : std::uint8_t {
  flag,     // a switch without a value (--gvl): "on" when given, else the fallback ("")
  word,     // one of a few words ("level|oneshot")
  integer,  // a decimal integer within [min, max]
};

// One command-line option that belongs to a model, declared in the model's registration
// (ModelSpec::options) so that main parses it by the table, never by name, and Options carries
// only what every model shares. A model reads the value with Options::value(option).
struct ModelOption {
  std::string_view flag;      // "--rearm"
  ArgKind kind = ArgKind::flag;
  std::string_view fallback;  // the value when not given ("level", "64"; "" for a switch)
  std::string_view words;     // ArgKind::word: the accepted values, joined by '|'
  int min = 0;                // ArgKind::integer: the accepted range
  int max = 0;
  std::string_view help;      // one line for --help, after the flag
};

// Command-line options every model shares, parsed and validated by main before a model runs,
// plus the values of the running model's own options (ModelOption) as text.
struct Options {
  std::string model;
  std::string host = "127.0.0.1";
  int port = 8080;
  int threads = 1;                      // meaning is per model; each model's file header says it
  int idle_timeout_ms = 30'000;         // close connections without a completed request this long
  int listen_backlog = 4096;            // above wrk's largest burst of connects in the scenarios
  bool trace_writes = false;            // --trace-writes: http::Pump prints every write size (tests)
  // Cluster mode and keep-alive policy (backends/server/cluster.h, http/codec.h).
  int processes = 0;                    // 0: this process serves; N: N forked workers serve
  bool keep_alive = true;               // false: every response closes its connection (Unicorn)

  // The value of one of the model's own options: as given on the command line (checked by main
  // against the option), else the option's fallback.
  std::string_view value(const ModelOption& option) const;
  // value() of an ArgKind::integer option, as a number (the fallback if the text is not one).
  int int_value(const ModelOption& option) const;
  // True if an ArgKind::flag option was given.
  bool is_set(const ModelOption& option) const { return value(option) == "on"; }
  // Records the value given for flag (main, and tests that build Options by hand).
  void set(std::string_view flag, std::string value);

 private:
  std::vector<std::pair<std::string, std::string>> model_args_;  // flag, value; few, so a vector
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
  // Optional: checks, before any listener opens, that this machine offers what the model needs
  // with these options (io-uring: the ring's features). Returns "" or one line naming what is
  // missing; main then prints it and exits kExitUnsupported.
  std::string (*probe)(const Options&) = nullptr;
  // The model's own command-line options (none for most). main accepts each flag for any model,
  // as every flag always was, checks its value, and passes it only to the models that declare it.
  std::span<const ModelOption> options{};
};

// The option of spec's table named flag, or nullptr.
const ModelOption* find_option(const ModelSpec& spec, std::string_view flag);

// Checks value against option. Returns "" or the refusal ("--rearm wants level or oneshot, got 'x'").
std::string check_option(const ModelOption& option, std::string_view value);

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
