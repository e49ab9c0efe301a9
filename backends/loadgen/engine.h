// cbench-load's measuring engine: T threads, each one event loop (epoll or io_uring, see
// engine_kind) over its share of the connections, non-blocking sockets. Closed loop keeps `pipeline` requests in flight per
// connection; open loop schedules requests at a rate and measures each from its INTENDED send
// time, so a request that waits (for a busy connection, for a stalled server) counts its wait.
#pragma once
#include <netinet/in.h>

#include <cstdint>
#include <string>
#include <vector>

#include "backends/loadgen/histogram.h"

namespace cb::loadgen {

enum class load_mode { closed, open };
enum class arrival_kind { constant, poisson };
// How a thread drives its sockets. epoll: readiness, one recv and one send system call per
// request plus the wait. uring: one io_uring per thread; a turn's sends and receive re-arms go to
// the kernel in one io_uring_enter that also waits, receives land in a provided-buffer ring
// (multishot, or one receive at a time with --read-rate so that each is sized by the rate).
enum class engine_kind { epoll, uring };

struct Target {
  std::string host;       // as written in the URL (the Host header)
  std::uint16_t port = 80;
  std::string path;       // path and query, starting with '/'
  sockaddr_in address{};  // resolved IPv4 address
};

// --duty SLICES:PHASE:SLICE_MS (open loop): the window is cut into slices of slice_ns, SLICES to a
// cycle, and this generator offers its full rate only in slice PHASE of each cycle; in the others
// it sends nothing (its connections stay open and idle). Several generators with the same SLICES
// and slice length and different phases, started together, load several servers in turn through
// one window: each is measured over the same stretch of the host, warm, and alone while loaded.
// That is why it exists: rows measured one after the other differ by the host's drift between
// them (docs/statistics.md, "Pairing"). Arrivals are scheduled in on-time and mapped to wall time.
struct DutyCycle {
  int slices = 1;  // 1: always on (no duty cycle)
  int phase = 0;   // 0 <= phase < slices
  std::int64_t slice_ns = 0;

  bool on() const { return slices > 1; }
  // Wall offset from the window's start of the instant `active_ns` of on-time into the schedule.
  std::int64_t wall_offset_ns(std::int64_t active_ns) const {
    if (!on()) return active_ns;
    return (active_ns / slice_ns) * slices * slice_ns + phase * slice_ns + active_ns % slice_ns;
  }
  // On-time within a window of window_ns from its start.
  std::int64_t active_ns(std::int64_t window_ns) const {
    if (!on()) return window_ns;
    std::int64_t period = slices * slice_ns;
    std::int64_t rest = window_ns % period - phase * slice_ns;
    return window_ns / period * slice_ns + (rest < 0 ? 0 : rest > slice_ns ? slice_ns : rest);
  }
};

struct LoadConfig {
  Target target;
  load_mode mode = load_mode::closed;
  arrival_kind arrivals = arrival_kind::constant;
  int connections = 10;
  int threads = 1;
  int pipeline = 1;
  double duration_s = 10.0;
  double rate_per_s = 0.0;  // open loop only: total offered rate over all threads (while on: duty)
  DutyCycle duty;
  // The window's start on the wall clock (CLOCK_REALTIME, ns since the epoch), so that generators
  // of a duty cycle started as separate processes share one schedule; 0: 10 ms after the call.
  std::int64_t start_at_realtime_ns = 0;
  // Slow readers: each connection reads at most this many bytes per second (a token
  // bucket, see engine.cpp), so a large response fills the kernel's buffers and the server has to
  // handle partial writes. 0: read as fast as the data arrives.
  double read_rate_bytes_per_s = 0.0;
  std::uint64_t seed = 1;
  // uring: about 0.16 system calls per request against 2.2 for epoll (-t2 -c64, GET /). Its CPU
  // per request was within noise of epoll's on a shared machine (ratio 0.99, 11 interleaved
  // pairs): the kernel's TCP path, the same for both, is most of either.
  engine_kind engine = engine_kind::uring;
};

// Errors by kind. A request lost with its connection (closed, reset, malformed reply) counts
// once in `aborted`, besides the connection-level kind that caused it.
struct ErrorCounts {
  std::uint64_t connect = 0;    // connect() failed or was refused
  std::uint64_t read = 0;       // read/write failed (ECONNRESET, EPIPE, ...)
  std::uint64_t closed = 0;     // the server closed a connection with requests outstanding
  std::uint64_t malformed = 0;  // a response failed the status-line or framing check
  std::uint64_t aborted = 0;    // requests sent (or queued for that connection) and never answered
  std::uint64_t backlog_overflow = 0;  // open loop: arrivals beyond kMaxBacklog, never sent
  std::uint64_t total_connection_errors() const { return connect + read + closed + malformed; }
};

// One slot of the run (by response arrival time), to show how latency grew. Slots are 1 s
// long, or longer for runs over kMaxSeriesSlots seconds, so memory stays bounded (8 KiB each).
struct SecondStats {
  Histogram latency;
};
inline constexpr std::int64_t kMaxSeriesSlots = 600;
// Length of one latency_series slot for a run of duration_s: 1 s up to 600 s, then longer.
inline std::int64_t series_slot_s(double duration_s) {
  auto d = static_cast<std::int64_t>(duration_s + 0.999999);
  return d <= kMaxSeriesSlots ? 1 : (d + kMaxSeriesSlots - 1) / kMaxSeriesSlots;
}

struct ThreadResult {
  Histogram latency;   // per request: response arrival minus intended (open) / actual (closed) send
  Histogram send_lag;  // open loop: actual send minus intended, for requests that found a free connection
  std::vector<SecondStats> seconds;  // latency_series slots of series_slot_s(duration) each
  ErrorCounts errors;
  std::uint64_t scheduled = 0;   // open loop: arrivals generated within the duration
  std::uint64_t sent = 0;
  std::uint64_t completed = 0;   // responses parsed in full (any status)
  std::uint64_t non2xx = 0;
  std::uint64_t unfinished = 0;  // at the end: queued in the generator or in flight
  std::uint64_t reconnects = 0;
  // Connections (slots, whatever their reconnects) that sent a request and got no response in the
  // whole run (an open-loop slot never offered a request is not one): a
  // server that serves some connections and starves the rest shows it here, not in the errors.
  std::uint64_t connections_unserved = 0;
  std::uint64_t bytes_read = 0;
};

struct LoadResult {
  LoadConfig config;
  ThreadResult total;      // merged over threads
  double elapsed_s = 0.0;  // the measurement window's length (= duration_s)
  double active_s = 0.0;   // its on-time: elapsed_s, or less under a duty cycle
  double cpu_s = 0.0;      // the generator's own user+system CPU over the run
};

// Runs the load described by config and returns the merged result. Never throws on network
// errors (they are counted); returns after config.duration_s plus at most one loop turn.
LoadResult run_load(const LoadConfig& config);

// Whether engine can run here: "" if so, else one line naming what is missing (for uring: the
// io_uring features backends/ring/ring.h probes, and multishot receive).
std::string engine_unavailable(engine_kind engine);

// Bound on the open-loop backlog per thread (requests due but without a free connection):
// 4M entries of 8 bytes (32 MiB), far above any point that is not already hopelessly overloaded.
inline constexpr std::size_t kMaxBacklog = std::size_t{1} << 22;

}  // namespace cb::loadgen
