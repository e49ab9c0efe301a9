#include "backends/http/handler.h"

#include <time.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>

#include "backends/http/limits.h"

namespace cb::http {
namespace {

constexpr std::string_view kHello = "Hello, world!";
constexpr std::string_view kJson = "{\"message\":\"Hello, World!\"}";

// Iterations of spin_kernel per microsecond of CPU; 0 until calibrated.
std::atomic<double> g_iters_per_us{0.0};
std::once_flag g_calibrate_once;
// Extra CPU per request in ns (set_handicap_ns); read on every request, written once at start-up.
std::atomic<std::uint64_t> g_handicap_ns{0};
// Extra spin_kernel iterations per request (set_handicap_loops); the same contract.
std::atomic<std::uint64_t> g_handicap_loops{0};

// A dependent chain of multiply-adds the optimiser cannot remove or vectorise.
std::uint64_t spin_kernel(std::uint64_t iters, std::uint64_t seed) {
  std::uint64_t x = seed | 1;
  for (std::uint64_t i = 0; i < iters; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    asm volatile("" : "+r"(x));
  }
  return x;
}

double thread_cpu_us() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

void do_calibrate() {
  // Best of 7 runs of ~2 ms: the fastest run is the one least disturbed by preemption on a
  // loaded machine, and CPU time (not wall time) excludes time spent descheduled.
  constexpr std::uint64_t kIters = 1'000'000;
  double best_us = 1e18;
  for (int run = 0; run < 7; ++run) {
    double t0 = thread_cpu_us();
    spin_kernel(kIters, static_cast<std::uint64_t>(run));
    double dt = thread_cpu_us() - t0;
    if (dt > 0 && dt < best_us) best_us = dt;
  }
  g_iters_per_us.store(kIters / best_us, std::memory_order_release);
}

// Parses "name=N" from a query string of '&'-separated pairs. Returns false if absent or not a
// decimal number that fits in 64 bits.
bool query_u64(std::string_view query, std::string_view name, std::uint64_t& out) {
  while (!query.empty()) {
    std::size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    if (pair.size() > name.size() && pair.substr(0, name.size()) == name && pair[name.size()] == '=') {
      std::string_view num = pair.substr(name.size() + 1);
      if (num.empty()) return false;
      auto [ptr, ec] = std::from_chars(num.data(), num.data() + num.size(), out);
      return ec == std::errc() && ptr == num.data() + num.size();
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return false;
}

Response text(int status, std::string_view body) { return Response{status, "text/plain", body, false}; }

// Static body for /bytes: built once, shared read-only by every thread.
const std::string& bytes_body() {
  static const std::string body(kMaxBytesBody, 'x');
  return body;
}

}  // namespace

std::string_view reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Unknown";
  }
}

void calibrate_spin() {
  std::call_once(g_calibrate_once, do_calibrate);
  (void)bytes_body();
}

void spin_for_us(std::uint64_t us) {
  double ipu = g_iters_per_us.load(std::memory_order_acquire);
  if (ipu == 0.0) {
    calibrate_spin();
    ipu = g_iters_per_us.load(std::memory_order_acquire);
  }
  spin_kernel(static_cast<std::uint64_t>(ipu * static_cast<double>(us)), us);
}

void set_handicap_ns(std::uint64_t ns) { g_handicap_ns.store(ns, std::memory_order_relaxed); }

void set_handicap_loops(std::uint64_t loops) { g_handicap_loops.store(loops, std::memory_order_relaxed); }

Response handle(const Request& req) {
  if (std::uint64_t h = g_handicap_ns.load(std::memory_order_relaxed); h != 0) {
    double ipu = g_iters_per_us.load(std::memory_order_acquire);
    if (ipu == 0.0) {
      calibrate_spin();
      ipu = g_iters_per_us.load(std::memory_order_acquire);
    }
    spin_kernel(static_cast<std::uint64_t>(ipu * static_cast<double>(h) / 1000.0), h);
  }
  if (std::uint64_t l = g_handicap_loops.load(std::memory_order_relaxed); l != 0) spin_kernel(l, l);
  if (req.method != HTTP_GET && req.method != HTTP_HEAD) return text(405, "405 Method Not Allowed\n");
  const std::string_view p = req.path;
  if (p == "/" || p == "/plaintext") return text(200, kHello);
  if (p == "/json") return Response{200, "application/json", kJson, false};
  std::uint64_t n = 0;
  if (p == "/spin") {
    if (!query_u64(req.query, "us", n) || n > kMaxSpinUs) return text(400, "400 Bad Request: /spin?us=N, N <= 1000000\n");
    spin_for_us(n);
    return text(200, kHello);
  }
  if (p == "/sleep") {
    if (!query_u64(req.query, "ms", n) || n > kMaxSleepMs) return text(400, "400 Bad Request: /sleep?ms=N, N <= 10000\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(n));
    return text(200, kHello);
  }
  if (p == "/bytes") {
    if (!query_u64(req.query, "n", n) || n > kMaxBytesBody) return text(400, "400 Bad Request: /bytes?n=N, N <= 4194304\n");
    return text(200, std::string_view(bytes_body()).substr(0, n));
  }
  return text(404, "404 Not Found\n");
}

}  // namespace cb::http
