// cbench-load: an HTTP/1.1 load generator for the benchmark, closed loop (like wrk) or open loop
// (a rate, latency from the intended send time). See --help for the interface and the exit codes.
#include <arpa/inet.h>
#include <netdb.h>
#include <signal.h>
#include <sys/resource.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "backends/loadgen/engine.h"
#include "cbench_version.h"  // CBENCH_GIT_COMMIT (cmake/cbench_version.cmake; issue 18)

namespace {

using cb::loadgen::arrival_kind;
using cb::loadgen::Histogram;
using cb::loadgen::load_mode;
using cb::loadgen::LoadConfig;
using cb::loadgen::LoadResult;

// Exit codes: the contract scripts rely on.
constexpr int kExitOk = 0;
constexpr int kExitUsage = 1;           // bad arguments or URL: nothing was sent
constexpr int kExitGeneratorBound = 2;  // the generator fell behind its schedule (see --max-lag-us)
constexpr int kExitNoResponses = 3;     // not one response was parsed (server down, closing, garbage)

// An open-loop point is overloaded when it completes less than this fraction of what it was
// offered: the server's queue (or the generator's backlog) grew for the whole run.
constexpr double kOverloadCompletionFraction = 0.9;

const char* kUsage =
    "usage: cbench-load [options] http://HOST:PORT/PATH\n"
    "  --connections C   connections (default 10)\n"
    "  --threads T       threads, one epoll loop each (default 1; at most C)\n"
    "  --duration S      seconds (default 10; '5s' also accepted)\n"
    "  --pipeline P      requests in flight per connection (default 1)\n"
    "  --rate R          open loop: R requests/s in total, latency from the intended send time\n"
    "  --arrivals KIND   open loop schedule: constant (default) or poisson\n"
    "  --seed N          seed of the Poisson schedule (default 1)\n"
    "  --read-rate B     slow readers: each connection reads at most B bytes/s (default: no limit)\n"
    "  --max-lag-us U    generator-bound when the send lag's p99 exceeds U us (default 1000)\n"
    "  --carry-on        exit 0 even when generator-bound\n"
    "  --json            print JSON on stdout instead of the human summary\n"
    "  --version         print 'cbench-load COMMIT' (the git commit it was built from) and exit\n"
    "Without --rate: closed loop (each connection sends its next request when an answer arrives).\n"
    "Latency histogram: log buckets, relative error <= 1% from 1 us to 1000 s; no sample is dropped.\n"
    "Exit: 0 ok, 1 bad arguments, 2 generator-bound (unless --carry-on), 3 no response parsed.\n";

struct Options {
  LoadConfig load;
  bool json = false;
  bool carry_on = false;
  double max_lag_us = 1000.0;
};

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "cbench-load: %s\n%s", message.c_str(), kUsage);
  std::exit(kExitUsage);
}

double parse_number(std::string_view flag, std::string_view text, bool allow_seconds_suffix = false) {
  if (allow_seconds_suffix && !text.empty() && text.back() == 's') text.remove_suffix(1);
  double v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc{} || p != text.data() + text.size() || !std::isfinite(v))
    usage_error(std::string(flag) + ": not a number: '" + std::string(text) + "'");
  return v;
}

int parse_positive_int(std::string_view flag, std::string_view text) {
  double v = parse_number(flag, text);
  if (v < 1 || v > 1'000'000 || v != std::floor(v)) usage_error(std::string(flag) + " must be a whole number >= 1");
  return static_cast<int>(v);
}

// Parses http://HOST[:PORT][/PATH[?QUERY]] and resolves HOST to an IPv4 address.
bool parse_url(const std::string& url, cb::loadgen::Target& t, std::string& error) {
  constexpr std::string_view kScheme = "http://";
  if (url.rfind(kScheme, 0) != 0) {
    error = "unparsable URL '" + url + "': only http://HOST[:PORT]/PATH is supported";
    return false;
  }
  std::string rest = url.substr(kScheme.size());
  std::size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  t.path = slash == std::string::npos ? "/" : rest.substr(slash);
  std::size_t colon = authority.rfind(':');
  t.host = authority.substr(0, colon);
  if (colon != std::string::npos) {
    std::string port = authority.substr(colon + 1);
    unsigned v = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
    if (port.empty() || ec != std::errc{} || p != port.data() + port.size() || v == 0 || v > 65535) {
      error = "unparsable URL '" + url + "': bad port '" + port + "'";
      return false;
    }
    t.port = static_cast<std::uint16_t>(v);
  }
  if (t.host.empty() || t.path.find_first_of(" \r\n") != std::string::npos) {
    error = "unparsable URL '" + url + "'";
    return false;
  }
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(t.host.c_str(), nullptr, &hints, &res);
  if (rc != 0 || res == nullptr) {
    error = "cannot resolve host '" + t.host + "': " + gai_strerror(rc);
    return false;
  }
  std::memcpy(&t.address, res->ai_addr, sizeof t.address);
  t.address.sin_port = htons(t.port);
  freeaddrinfo(res);
  return true;
}

Options parse_args(int argc, char** argv) {
  Options o;
  std::string url;
  bool have_rate = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&]() -> std::string_view {
      if (i + 1 >= argc) usage_error(std::string(a) + " needs a value");
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(kExitOk);
    } else if (a == "--version") {  // issue 18: the sweep checks every client host runs the same commit
      std::printf("cbench-load %s\n", CBENCH_GIT_COMMIT);
      std::exit(kExitOk);
    } else if (a == "--connections" || a == "-c") {
      o.load.connections = parse_positive_int(a, value());
    } else if (a == "--threads" || a == "-t") {
      o.load.threads = parse_positive_int(a, value());
    } else if (a == "--pipeline") {
      o.load.pipeline = parse_positive_int(a, value());
    } else if (a == "--duration" || a == "-d") {
      o.load.duration_s = parse_number(a, value(), true);
      if (o.load.duration_s <= 0 || o.load.duration_s > 86400) usage_error("--duration must be in (0, 86400] seconds");
    } else if (a == "--rate") {
      o.load.rate_per_s = parse_number(a, value());
      if (o.load.rate_per_s <= 0) usage_error("--rate must be > 0 requests/s (omit it for a closed loop)");
      have_rate = true;
    } else if (a == "--arrivals") {
      std::string_view k = value();
      if (k == "constant") o.load.arrivals = arrival_kind::constant;
      else if (k == "poisson") o.load.arrivals = arrival_kind::poisson;
      else usage_error("--arrivals must be 'constant' or 'poisson'");
    } else if (a == "--seed") {
      o.load.seed = static_cast<std::uint64_t>(parse_number(a, value()));
    } else if (a == "--read-rate") {
      o.load.read_rate_bytes_per_s = parse_number(a, value());
      if (o.load.read_rate_bytes_per_s < 1) usage_error("--read-rate must be >= 1 byte/s");
    } else if (a == "--max-lag-us") {
      o.max_lag_us = parse_number(a, value());
      if (o.max_lag_us <= 0) usage_error("--max-lag-us must be > 0");
    } else if (a == "--carry-on") {
      o.carry_on = true;
    } else if (a == "--json") {
      o.json = true;
    } else if (!a.empty() && a[0] == '-') {
      usage_error("unknown option " + std::string(a));
    } else if (url.empty()) {
      url = a;
    } else {
      usage_error("more than one URL");
    }
  }
  if (url.empty()) usage_error("no URL given");
  if (o.load.threads > o.load.connections) usage_error("--threads must not exceed --connections");
  o.load.mode = have_rate ? load_mode::open : load_mode::closed;
  std::string error;
  if (!parse_url(url, o.load.target, error)) usage_error(error);
  return o;
}

struct Quantile {
  const char* name;
  double q;
};
constexpr Quantile kQuantiles[] = {{"p50", 0.5},   {"p75", 0.75},    {"p90", 0.9},
                                   {"p99", 0.99},  {"p99.9", 0.999}, {"p99.99", 0.9999}};

std::string json_number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}

std::string json_histogram_summary(const Histogram& h) {
  std::string s = "{";
  for (const auto& q : kQuantiles) s += "\"" + std::string(q.name) + "\": " + json_number(h.value_at_quantile(q.q)) + ", ";
  s += "\"max\": " + json_number(h.max_us()) + ", \"min\": " + json_number(h.min_us()) +
       ", \"mean\": " + json_number(h.mean_us()) + ", \"count\": " + std::to_string(h.count()) + "}";
  return s;
}

std::string json_buckets(const Histogram& h) {
  std::string s = "[";
  bool first = true;
  for (const auto& b : h.nonempty_buckets()) {
    if (!first) s += ", ";
    first = false;
    s += "[" + json_number(b.low_us) + ", " + json_number(b.high_us) + ", " + std::to_string(b.count) + "]";
  }
  return s + "]";
}

struct Verdict {
  bool overloaded = false;
  bool generator_bound = false;
  double rate_achieved = 0;
};

Verdict judge(const Options& o, const LoadResult& r) {
  Verdict v;
  v.rate_achieved = r.total.completed / r.elapsed_s;
  if (o.load.mode == load_mode::open) {
    v.overloaded = v.rate_achieved < kOverloadCompletionFraction * o.load.rate_per_s;
    v.generator_bound = r.total.send_lag.count() > 0 && r.total.send_lag.value_at_quantile(0.99) > o.max_lag_us;
  }
  return v;
}

void print_json(const Options& o, const LoadResult& r, const Verdict& v) {
  const auto& t = r.total;
  const auto& e = t.errors;
  bool open = o.load.mode == load_mode::open;
  std::string s = "{\n";
  s += "  \"generator\": \"cbench-load\",\n";
  s += "  \"mode\": \"" + std::string(open ? "open" : "closed") + "\",\n";
  s += "  \"arrivals\": " + std::string(!open ? "null" : o.load.arrivals == arrival_kind::poisson ? "\"poisson\"" : "\"constant\"") + ",\n";
  s += "  \"seed\": " + std::to_string(o.load.seed) + ",\n";
  s += "  \"url_path\": \"" + o.load.target.path + "\",\n";
  s += "  \"connections\": " + std::to_string(o.load.connections) + ", \"threads\": " + std::to_string(o.load.threads) +
       ", \"pipeline\": " + std::to_string(o.load.pipeline) + ",\n";
  s += "  \"duration_s\": " + json_number(r.elapsed_s) + ",\n";
  s += "  \"rate_offered\": " + (open ? json_number(o.load.rate_per_s) : std::string("null")) + ",\n";
  s += "  \"read_rate_bytes_per_s\": " +
       (o.load.read_rate_bytes_per_s > 0 ? json_number(o.load.read_rate_bytes_per_s) : std::string("null")) + ",\n";
  s += "  \"requests\": " + std::to_string(t.completed) + ",\n";
  s += "  \"rate_achieved\": " + json_number(v.rate_achieved) + ",\n";
  s += "  \"scheduled\": " + std::to_string(t.scheduled) + ", \"sent\": " + std::to_string(t.sent) +
       ", \"unfinished\": " + std::to_string(t.unfinished) + ", \"non2xx\": " + std::to_string(t.non2xx) +
       ", \"reconnects\": " + std::to_string(t.reconnects) + ", \"bytes_read\": " + std::to_string(t.bytes_read) + ",\n";
  s += "  \"errors\": {\"connect\": " + std::to_string(e.connect) + ", \"read\": " + std::to_string(e.read) +
       ", \"closed\": " + std::to_string(e.closed) + ", \"malformed\": " + std::to_string(e.malformed) +
       ", \"aborted\": " + std::to_string(e.aborted) + ", \"backlog_overflow\": " + std::to_string(e.backlog_overflow) + "},\n";
  s += "  \"histogram_relative_error\": " + json_number(Histogram::kRelativeError) + ",\n";
  s += "  \"latency_us\": " + json_histogram_summary(t.latency) + ",\n";
  s += "  \"latency_histogram_us\": " + json_buckets(t.latency) + ",\n";
  s += "  \"send_lag_us\": " + json_histogram_summary(t.send_lag) + ",\n";
  s += "  \"send_lag_histogram_us\": " + json_buckets(t.send_lag) + ",\n";
  s += "  \"send_lag_bound_us\": " + json_number(o.max_lag_us) + ",\n";
  s += "  \"generator_bound\": " + std::string(v.generator_bound ? "true" : "false") + ",\n";
  s += "  \"cpu_s\": " + json_number(r.cpu_s) + ",\n";
  s += "  \"cpu_us_per_request\": " + (t.completed ? json_number(r.cpu_s * 1e6 / t.completed) : std::string("null")) + ",\n";
  s += "  \"overloaded\": " + std::string(v.overloaded ? "true" : "false") + ",\n";
  s += "  \"latency_series\": [";
  for (std::size_t i = 0; i < t.seconds.size(); ++i) {
    const Histogram& h = t.seconds[i].latency;
    s += std::string(i ? ",\n    " : "\n    ") + "{\"t_s\": " + std::to_string(i * cb::loadgen::series_slot_s(o.load.duration_s)) + ", \"count\": " + std::to_string(h.count()) +
         ", \"p50_us\": " + json_number(h.value_at_quantile(0.5)) + ", \"p99_us\": " + json_number(h.value_at_quantile(0.99)) +
         ", \"max_us\": " + json_number(h.max_us()) + "}";
  }
  s += "\n  ]\n}\n";
  std::fputs(s.c_str(), stdout);
}

std::string human_us(double us) {
  char buf[32];
  if (us >= 1e6) std::snprintf(buf, sizeof buf, "%.2fs", us / 1e6);
  else if (us >= 1e3) std::snprintf(buf, sizeof buf, "%.2fms", us / 1e3);
  else std::snprintf(buf, sizeof buf, "%.0fus", us);
  return buf;
}

void print_human(const Options& o, const LoadResult& r, const Verdict& v) {
  const auto& t = r.total;
  const auto& e = t.errors;
  bool open = o.load.mode == load_mode::open;
  std::printf("cbench-load %s loop, %d connections, %d threads, pipeline %d, %.1fs", open ? "open" : "closed",
              o.load.connections, o.load.threads, o.load.pipeline, r.elapsed_s);
  if (open) std::printf(", offered %.1f req/s (%s)", o.load.rate_per_s, o.load.arrivals == arrival_kind::poisson ? "poisson" : "constant");
  std::printf("\n  %llu responses, %.1f req/s achieved, %llu unfinished, %llu non-2xx\n",
              static_cast<unsigned long long>(t.completed), v.rate_achieved, static_cast<unsigned long long>(t.unfinished),
              static_cast<unsigned long long>(t.non2xx));
  std::printf("  errors: connect %llu, read %llu, closed %llu, malformed %llu, aborted %llu, backlog_overflow %llu\n",
              static_cast<unsigned long long>(e.connect), static_cast<unsigned long long>(e.read),
              static_cast<unsigned long long>(e.closed), static_cast<unsigned long long>(e.malformed),
              static_cast<unsigned long long>(e.aborted), static_cast<unsigned long long>(e.backlog_overflow));
  if (v.overloaded) {
    std::printf("  OVERLOADED: offered more than served; no steady state, so no headline percentiles.\n"
                "  latency by second of the run (p50 / p99):\n");
    for (std::size_t i = 0; i < t.seconds.size(); ++i) {
      const Histogram& h = t.seconds[i].latency;
      std::printf("    %3llds  n=%-7llu %s / %s\n", static_cast<long long>(i * cb::loadgen::series_slot_s(o.load.duration_s)), static_cast<unsigned long long>(h.count()),
                  human_us(h.value_at_quantile(0.5)).c_str(), human_us(h.value_at_quantile(0.99)).c_str());
    }
  } else {
    std::printf("  latency (%s):", open ? "from intended send time" : "from send time");
    for (const auto& q : kQuantiles) std::printf(" %s %s", q.name, human_us(t.latency.value_at_quantile(q.q)).c_str());
    std::printf(" max %s\n", human_us(t.latency.max_us()).c_str());
  }
  if (open)
    std::printf("  send lag: p50 %s p99 %s max %s (bound %s)%s\n", human_us(t.send_lag.value_at_quantile(0.5)).c_str(),
                human_us(t.send_lag.value_at_quantile(0.99)).c_str(), human_us(t.send_lag.max_us()).c_str(),
                human_us(o.max_lag_us).c_str(), v.generator_bound ? "  GENERATOR-BOUND" : "");
  if (t.completed) std::printf("  generator CPU: %.2fs, %.2f us/request\n", r.cpu_s, r.cpu_s * 1e6 / t.completed);
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  Options o = parse_args(argc, argv);
  // One fd per connection: raise the soft open-file limit to the hard one, as the server does.
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    setrlimit(RLIMIT_NOFILE, &nofile);
  }
  LoadResult r = cb::loadgen::run_load(o.load);
  Verdict v = judge(o, r);
  if (o.json) print_json(o, r, v);
  else print_human(o, r, v);
  if (r.total.completed == 0) {
    std::fprintf(stderr, "cbench-load: no response parsed (%llu connect errors, %llu closed, %llu malformed)\n",
                 static_cast<unsigned long long>(r.total.errors.connect), static_cast<unsigned long long>(r.total.errors.closed),
                 static_cast<unsigned long long>(r.total.errors.malformed));
    return kExitNoResponses;
  }
  if (v.generator_bound) {
    std::fprintf(stderr, "cbench-load: generator-bound: send lag p99 %.0f us > %.0f us while connections were free%s\n",
                 r.total.send_lag.value_at_quantile(0.99), o.max_lag_us, o.carry_on ? " (--carry-on)" : "");
    if (!o.carry_on) return kExitGeneratorBound;
  }
  return kExitOk;
}
