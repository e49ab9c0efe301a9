// cbench-server: parses options, opens listeners, prints the readiness line, runs one model, and
// turns SIGINT/SIGTERM into a stop request. Everything model-specific lives in servers/.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "backends/http/codec.h"
#include "backends/http/handler.h"
#include "backends/http/pump.h"
#include "backends/net/socket.h"
#include "backends/server/cluster.h"
#include "cbench_version.h"  // CBENCH_GIT_COMMIT (cmake/cbench_version.cmake; issue 18)
#include "backends/stats/counters.h"
#include "backends/server/model.h"

namespace {

using cb::server::Options;

constexpr const char* kUsage =
    "usage: cbench-server --model NAME [--port P] [--host ADDR] [--threads N]\n"
    "                     [--idle-timeout-ms MS] [--handicap-ns N] [--processes N] [--keepalive on|off]\n"
    "                     [--counters-out PATH] [--response standard|published] [--trace-writes]\n"
    "                     [MODEL OPTIONS: see below]\n"
    "       cbench-server --version   (prints 'cbench-server COMMIT', the git commit it was built from)\n"
    "       cbench-server --list   (one model a line: NAME<tab>TRAITS<tab>SUMMARY; TRAITS is\n"
    "                               bounded, instrument, both joined by ',', or -)\n"
    "Prints 'cbench-server ready model=NAME host=H port=P threads=N pid=PID' once listening.\n"
    "Port 0 picks a free port. SIGINT or SIGTERM stops it (exit 0).\n"
    "--counters-out writes the mechanism counters (backends/stats/counters.h) as JSON at exit and on SIGUSR1.\n"
    "--trace-writes prints 'cbench-server: pump write N' to stderr for every write (tests).\n"
    "--processes N forks N workers of the model after listening (cluster mode; the readiness line\n"
    "adds processes=N workers=PIDS). --keepalive off answers every request with Connection: close.\n";

// The usage, then every model's own options (ModelSpec::options), one line each with the models
// that read it; any model accepts them (and ignores those it does not declare).
std::string usage() {
  std::string text = kUsage;
  text += "Model options (read by the models named in brackets):\n";
  std::vector<std::pair<std::string_view, std::string>> lines;  // flag, its line
  for (const auto& spec : cb::server::Registry::all()) {
    for (const auto& o : spec.options) {
      auto it = std::find_if(lines.begin(), lines.end(), [&](const auto& l) { return l.first == o.flag; });
      if (it != lines.end()) {
        it->second.insert(it->second.find(']'), ", " + std::string(spec.name));
        continue;
      }
      std::string arg = o.kind == cb::server::ArgKind::word      ? " " + std::string(o.words)
                        : o.kind == cb::server::ArgKind::integer ? " N"
                                                                 : "";
      lines.emplace_back(o.flag, "  " + std::string(o.flag) + arg + " [" + std::string(spec.name) + "] " +
                                     std::string(o.help) + "\n");
    }
  }
  for (const auto& l : lines) text += l.second;
  return text;
}

[[noreturn]] void die_usage(const std::string& msg) {
  std::fprintf(stderr, "cbench-server: %s\n%s", msg.c_str(), usage().c_str());
  std::exit(2);
}

int parse_int(const std::string& flag, const char* text, int lo, int hi) {
  int v = 0;
  const char* end = text + std::strlen(text);
  auto [ptr, ec] = std::from_chars(text, end, v);
  if (ec != std::errc() || ptr != end || v < lo || v > hi) {
    die_usage(flag + " wants an integer from " + std::to_string(lo) + " to " + std::to_string(hi) + ", got '" +
              text + "'");
  }
  return v;
}

// Options main handles itself (not seen by models).
struct MainOptions {
  std::string counters_out;  // empty: no counters file
};

// The option named flag of the model named model_name, else of the first model (by name) that
// declares it; nullptr if none does. A flag of another model is checked and then ignored by this
// one, as every flag was before models declared their own.
const cb::server::ModelOption* model_option(std::string_view model_name, std::string_view flag) {
  if (const auto* spec = cb::server::Registry::find(model_name))
    if (const auto* o = cb::server::find_option(*spec, flag)) return o;
  for (const auto& spec : cb::server::Registry::all())
    if (cb::server::find_option(spec, flag) != nullptr) return cb::server::find_option(*cb::server::Registry::find(spec.name), flag);
  return nullptr;
}

Options parse(int argc, char** argv, bool& list, MainOptions& mo) {
  Options o;
  bool have_model = false;
  // The model's options are parsed with its table, wherever --model stands.
  std::string_view model_name;
  for (int i = 1; i + 1 < argc; ++i)
    if (std::string_view(argv[i]) == "--model") model_name = argv[i + 1];
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](void) -> const char* {
      if (i + 1 >= argc) die_usage(a + " needs a value");
      return argv[++i];
    };
    if (a == "--list") list = true;
    else if (a == "--help" || a == "-h") { std::fputs(usage().c_str(), stdout); std::exit(0); }
    else if (a == "--version") {  // issue 18: the sweep checks every host runs the same commit
      std::printf("cbench-server %s\n", CBENCH_GIT_COMMIT);
      std::exit(0);
    }
    else if (a == "--model") { o.model = value(); have_model = true; }
    else if (a == "--port") o.port = parse_int(a, value(), 0, 65535);
    else if (a == "--host") o.host = value();
    else if (a == "--threads") o.threads = parse_int(a, value(), 1, 1024);
    else if (a == "--idle-timeout-ms") o.idle_timeout_ms = parse_int(a, value(), 1, 24 * 3600 * 1000);
    else if (a == "--trace-writes") o.trace_writes = true;  // the conformance suite's shared-pump case
    else if (a == "--counters-out") mo.counters_out = value();
    else if (a == "--response") {  // codec.h: ResponseStyle
      std::string r = value();
      if (r == "standard") cb::http::set_response_style(cb::http::ResponseStyle::standard);
      else if (r == "published") cb::http::set_response_style(cb::http::ResponseStyle::published);
      else die_usage("--response wants standard or published, got '" + r + "'");
    }
    // --- calibration handicap (issue 12, `cbench calibrate`): N ns of CPU per request ---
    else if (a == "--handicap-ns") cb::http::set_handicap_ns(static_cast<std::uint64_t>(parse_int(a, value(), 0, 10'000'000)));
    // --- end of calibration handicap ---
    // --- cluster mode and keep-alive policy (issue 15) ---
    else if (a == "--processes") o.processes = parse_int(a, value(), 1, 256);
    else if (a == "--keepalive") {
      std::string k = value();
      if (k == "on") o.keep_alive = true;
      else if (k == "off") o.keep_alive = false;
      else die_usage("--keepalive wants on or off, got '" + k + "'");
    }
    // --- end of cluster mode ---
    else if (const cb::server::ModelOption* mo_ = model_option(model_name, a)) {
      std::string v = mo_->kind == cb::server::ArgKind::flag ? "on" : value();
      std::string refused = cb::server::check_option(*mo_, v);
      if (!refused.empty()) die_usage(refused);
      o.set(mo_->flag, std::move(v));
    }
    else die_usage("unknown argument '" + a + "'");
  }
  if (!list && !have_model) die_usage("--model is required (see --list)");
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  bool list = false;
  MainOptions mo;
  Options opt = parse(argc, argv, list, mo);
  if (list) {
    for (const auto& m : cb::server::Registry::all())
      std::printf("%.*s\t%s\t%.*s\n", int(m.name.size()), m.name.data(), cb::server::traits_text(m.traits).c_str(),
                  int(m.summary.size()), m.summary.data());
    return 0;
  }
  const cb::server::ModelSpec* spec = cb::server::Registry::find(opt.model);
  if (spec == nullptr) {
    std::string names;
    for (const auto& m : cb::server::Registry::all()) names += (names.empty() ? "" : ", ") + std::string(m.name);
    std::fprintf(stderr, "cbench-server: unknown model '%s' (known: %s)\n", opt.model.c_str(), names.c_str());
    return 2;
  }

  // Block the stop signals in every thread (threads inherit the mask) and take them in one
  // thread with sigwait, so no model needs a signal handler. SIGPIPE is ignored: writes to a
  // closed peer return EPIPE instead.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGUSR1);  // counters snapshot, not a stop
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::string note = cb::net::raise_nofile_limit();
  if (!note.empty()) std::fprintf(stderr, "cbench-server: %s\n", note.c_str());
  cb::http::calibrate_spin();
  cb::http::Pump::trace_writes(opt.trace_writes);

  // A model that probes the kernel (io-uring) says what is missing before anything listens.
  if (spec->probe != nullptr) {
    std::string missing = spec->probe(opt);
    if (!missing.empty()) {
      std::fprintf(stderr, "cbench-server: %s: not supported here: %s\n", opt.model.c_str(), missing.c_str());
      return cb::server::kExitUnsupported;
    }
  }

  int count = spec->listeners == cb::server::ListenerLayout::per_thread ? opt.threads : 1;
  cb::net::ListenResult lr = cb::net::open_listeners(opt.host, static_cast<std::uint16_t>(opt.port), count, opt.listen_backlog);
  if (!lr.error.empty()) {
    std::fprintf(stderr, "cbench-server: %s\n", lr.error.c_str());
    return 1;
  }
  opt.port = lr.port;
  // Issue 15: the keep-alive policy lives in the codec's response framing, so every model
  // applies it alike; in cluster mode the parent supervises and only the workers go on below.
  cb::http::Codec::set_keep_alive(opt.keep_alive ? cb::http::KeepAlive::on : cb::http::KeepAlive::off);
  if (opt.processes > 0) {
    cb::server::run_cluster(opt, lr.fds);
    // A worker writes its own counters file (cluster.h: PATH.w<slot>; the harness sums them).
    if (!mo.counters_out.empty()) mo.counters_out += ".w" + std::to_string(cb::server::worker_slot());
  }
  cb::server::Control control(lr.fds);

  std::atomic<bool> signal_taken{false};
  std::thread signal_thread([&] {
    int sig = 0;
    for (;;) {
      siginfo_t info{};
      sig = sigwaitinfo(&stop_signals, &info);
      if (sig < 0) continue;  // EINTR
      // Issue 15: a cluster worker stops only when its supervisor says so (cluster.h).
      if (sig != SIGUSR1 && !cb::server::stop_signal_accepted(info)) continue;
      if (sig != SIGUSR1) break;
      if (mo.counters_out.empty()) continue;
      std::string err = cb::stats::write_counters(mo.counters_out);
      if (!err.empty()) std::fprintf(stderr, "cbench-server: %s\n", err.c_str());
    }
    signal_taken.store(true);
    control.request_stop();
  });

  if (opt.processes > 0) {
    cb::server::worker_ready();  // the parent prints the readiness line once all workers are up
  } else {
    std::printf("cbench-server ready model=%s host=%s port=%d threads=%d pid=%d\n", opt.model.c_str(),
                opt.host.c_str(), opt.port, opt.threads, static_cast<int>(getpid()));
    std::fflush(stdout);
  }

  int status = spec->run(opt, control);

  // A model that returned on its own (an error, or its own request_stop) leaves the signal thread
  // in sigwait: wake it. A signal that arrives meanwhile is taken by the same sigwait.
  if (!signal_taken.load()) pthread_kill(signal_thread.native_handle(), SIGTERM);
  signal_thread.join();
  for (int fd : control.listeners()) cb::net::close_fd(fd);
  if (!mo.counters_out.empty()) {
    std::string err = cb::stats::write_counters(mo.counters_out);
    if (!err.empty()) std::fprintf(stderr, "cbench-server: %s\n", err.c_str());
  }
  std::fprintf(stderr, "cbench-server: stopped (status %d)\n", status);
  return status;
}
