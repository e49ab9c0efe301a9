// Small helpers shared by the microbenchmarks: descriptor limits, a futex reply for round trips,
// and the process's memory figures. Header-only; nothing here is measured by itself.
#pragma once
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace cb::bench {

// Raises the soft RLIMIT_NOFILE to at least `need` descriptors, and the hard limit too when
// allowed (root). Returns "" on success, or a message saying what the limits are.
inline std::string raise_nofile(rlim_t need) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return std::string("getrlimit(RLIMIT_NOFILE): ") + std::strerror(errno);
  if (lim.rlim_cur >= need) return "";
  rlimit want = lim;
  want.rlim_cur = need;
  if (lim.rlim_max != RLIM_INFINITY && lim.rlim_max < need) want.rlim_max = need;
  if (setrlimit(RLIMIT_NOFILE, &want) == 0) return "";
  return "needs " + std::to_string(need) + " file descriptors; RLIMIT_NOFILE is " + std::to_string(lim.rlim_cur) +
         " (hard " + std::to_string(lim.rlim_max) + ") and cannot be raised: " + std::strerror(errno) +
         " (raise it with ulimit -Hn, or run as root)";
}

// A stream socket pair whose ends close on destruction: an idle connection seen from both sides.
struct SocketPair {
  int fd[2] = {-1, -1};
  SocketPair() = default;
  SocketPair(const SocketPair&) = delete;
  SocketPair& operator=(const SocketPair&) = delete;
  SocketPair(SocketPair&& o) noexcept : fd{o.fd[0], o.fd[1]} { o.fd[0] = o.fd[1] = -1; }
  ~SocketPair() {
    if (fd[0] >= 0) ::close(fd[0]);
    if (fd[1] >= 0) ::close(fd[1]);
  }
  // Returns false (errno set) if the kernel refuses; both ends are non-blocking on success.
  bool open() { return ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fd) == 0; }
};

// Opens `n` socket pairs into `out` (appending). Returns "" or the failure with its errno text.
inline std::string open_socket_pairs(std::size_t n, std::vector<SocketPair>& out) {
  out.reserve(out.size() + n);
  for (std::size_t i = 0; i < n; ++i) {
    SocketPair p;
    if (!p.open()) return "socketpair #" + std::to_string(i) + ": " + std::strerror(errno);
    out.push_back(std::move(p));
  }
  return "";
}

// The reply half of a cross-thread round trip: the woken side calls post(), the waking side
// wait()s for the sequence number it expects. Blocks in a futex (C++20 atomic wait), never
// spins, so that both threads can share one CPU (cbench micro pins everything to the server's
// CPU, as the sweep pins the server); every variant of a round trip pays this same reply.
class FutexReply {
 public:
  void post() noexcept {
    seq_.fetch_add(1, std::memory_order_release);
    seq_.notify_one();
  }
  // Returns once post() has been called `expected` times in total.
  void wait(std::uint32_t expected) noexcept {
    std::uint32_t seen;
    while ((seen = seq_.load(std::memory_order_acquire)) != expected) seq_.wait(seen, std::memory_order_acquire);
  }
  std::uint32_t value() const noexcept { return seq_.load(std::memory_order_acquire); }

 private:
  std::atomic<std::uint32_t> seq_{0};  // 32-bit: the size the kernel's futex waits on directly
};

// This process's resident and virtual size in KiB, from /proc/self/statm (0 if unreadable).
struct MemoryKib {
  std::uint64_t resident = 0;
  std::uint64_t virtual_size = 0;
};

inline MemoryKib memory_kib() {
  MemoryKib m;
  if (std::FILE* f = std::fopen("/proc/self/statm", "r")) {
    unsigned long long size_pages = 0, resident_pages = 0;
    if (std::fscanf(f, "%llu %llu", &size_pages, &resident_pages) == 2) {
      const std::uint64_t page_kib = static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE)) / 1024;
      m.resident = resident_pages * page_kib;
      m.virtual_size = size_pages * page_kib;
    }
    std::fclose(f);
  }
  return m;
}

// "KernelStack:" of /proc/meminfo in KiB: the kernel stacks of every thread on the machine
// (machine-wide, so other processes' thread churn shows in it). 0 if unreadable.
inline std::uint64_t kernel_stack_kib() {
  std::uint64_t kib = 0;
  if (std::FILE* f = std::fopen("/proc/meminfo", "r")) {
    char line[256];
    while (std::fgets(line, sizeof line, f)) {
      unsigned long long v = 0;
      if (std::sscanf(line, "KernelStack: %llu kB", &v) == 1) {
        kib = v;
        break;
      }
    }
    std::fclose(f);
  }
  return kib;
}

}  // namespace cb::bench
