// cbench-server: parses options, opens listeners, prints the readiness line, runs one model, and
// turns SIGINT/SIGTERM into a stop request. Everything model-specific lives in servers/.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <thread>

#include "backends/http/codec.h"
#include "backends/http/handler.h"
#include "backends/http/pump.h"
#include "backends/loop/pull_loop.h"
#include "backends/net/socket.h"
#include "backends/server/cluster.h"
#include "cbench_version.h"  // CBENCH_GIT_COMMIT (cmake/cbench_version.cmake; issue 18)
#include "backends/stats/counters.h"
#include "backends/server/model.h"

namespace {

using cb::server::Options;

constexpr const char* kUsage =
    "usage: cbench-server --model NAME [--port P] [--host ADDR] [--threads N]\n"
    "                     [--queues shared|per-worker] [--gvl] [--backend libev|epoll]\n"
    "                     [--idle-timeout-ms MS] [--handicap-ns N] [--processes N] [--keepalive on|off]\n"
    "                     [--counters-out PATH] [--response standard|published]\n"
    "                     [--rearm level|oneshot] [--stack-kb KB] [--test-worker-delay-us US]\n"
    "                     [--trace-writes] [--uring-recv single|multishot]\n"
    "       cbench-server --version   (prints 'cbench-server COMMIT', the git commit it was built from)\n"
    "       cbench-server --list   (one model a line: NAME<tab>TRAITS<tab>SUMMARY; TRAITS is\n"
    "                               bounded, instrument, both joined by ',', or -)\n"
    "Prints 'cbench-server ready model=NAME host=H port=P threads=N pid=PID' once listening.\n"
    "Port 0 picks a free port. SIGINT or SIGTERM stops it (exit 0).\n"
    "--counters-out writes the mechanism counters (backends/stats/counters.h) as JSON at exit and on SIGUSR1.\n"
    "--trace-writes prints 'cbench-server: pump write N' to stderr for every write (tests).\n"
    "--processes N forks N workers of the model after listening (cluster mode; the readiness line\n"
    "adds processes=N workers=PIDS). --keepalive off answers every request with Connection: close.\n"
    "--uring-recv (io-uring): single (default) arms one receive per read; multishot keeps one\n"
    "multishot receive armed per connection (Linux 6.0; refused with exit 77 where missing).\n";

[[noreturn]] void die_usage(const std::string& msg) {
  std::fprintf(stderr, "cbench-server: %s\n%s", msg.c_str(), kUsage);
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

Options parse(int argc, char** argv, bool& list, MainOptions& mo) {
  Options o;
  bool have_model = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](void) -> const char* {
      if (i + 1 >= argc) die_usage(a + " needs a value");
      return argv[++i];
    };
    if (a == "--list") list = true;
    else if (a == "--help" || a == "-h") { std::fputs(kUsage, stdout); std::exit(0); }
    else if (a == "--version") {  // issue 18: the sweep checks every host runs the same commit
      std::printf("cbench-server %s\n", CBENCH_GIT_COMMIT);
      std::exit(0);
    }
    else if (a == "--model") { o.model = value(); have_model = true; }
    else if (a == "--port") o.port = parse_int(a, value(), 0, 65535);
    else if (a == "--host") o.host = value();
    else if (a == "--threads") o.threads = parse_int(a, value(), 1, 1024);
    else if (a == "--idle-timeout-ms") o.idle_timeout_ms = parse_int(a, value(), 1, 24 * 3600 * 1000);
    else if (a == "--gvl") o.gvl = true;
    else if (a == "--trace-writes") o.trace_writes = true;  // the conformance suite's shared-pump case
    else if (a == "--counters-out") mo.counters_out = value();
    else if (a == "--stack-kb") o.stack_kb = parse_int(a, value(), 16, 64 * 1024);
    else if (a == "--test-worker-delay-us") o.test_worker_delay_us = parse_int(a, value(), 0, 1'000'000);
    else if (a == "--rearm") {
      std::string r = value();
      if (r == "level") o.rearm = cb::server::Rearm::level;
      else if (r == "oneshot") o.rearm = cb::server::Rearm::oneshot;
      else die_usage("--rearm wants level or oneshot, got '" + r + "'");
    }
    else if (a == "--response") {  // codec.h: ResponseStyle
      std::string r = value();
      if (r == "standard") cb::http::set_response_style(cb::http::ResponseStyle::standard);
      else if (r == "published") cb::http::set_response_style(cb::http::ResponseStyle::published);
      else die_usage("--response wants standard or published, got '" + r + "'");
    }
    else if (a == "--queues") {
      std::string q = value();
      if (q == "shared") o.queues = cb::server::QueueLayout::shared;
      else if (q == "per-worker") o.queues = cb::server::QueueLayout::per_worker;
      else die_usage("--queues wants shared or per-worker, got '" + q + "'");
    } else if (a == "--backend") {
      std::string b = value();
      std::optional<cb::loop::Backend> backend = cb::loop::parse_backend(b);
      if (!backend) die_usage("--backend wants libev or epoll, got '" + b + "'");
      o.backend = *backend;
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
    // --- io-uring receive mode (issue 16) ---
    else if (a == "--uring-recv") {
      std::string r = value();
      if (r == "single") o.uring_recv = cb::server::UringRecv::single;
      else if (r == "multishot") o.uring_recv = cb::server::UringRecv::multishot;
      else die_usage("--uring-recv wants single or multishot, got '" + r + "'");
    }
    // --- end of io-uring receive mode ---
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
