// Steady-state allocation checks for the codec and for NbSession. This binary replaces the global
// operator new/delete (and, unless a sanitizer owns malloc, malloc/calloc/realloc too) with
// counting versions; the replacement is process-wide, hence a test executable of its own. Counting
// is armed only around the measured loops, on the test's thread, and the first allocation seen is
// recorded with its stack so that a failure names the allocation.
#include <execinfo.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "backends/http/codec.h"
#include "backends/http/limits.h"
#include "backends/net/nb_session.h"
#include "backends/net/socket.h"

// ---------------------------------------------------------------------------------------------
// Counting allocator

namespace {

thread_local bool t_counting = false;  // armed around measured loops, on this thread only
thread_local bool t_in_hook = false;   // backtrace() may allocate: don't count or recurse

struct AllocStats {
  std::uint64_t new_calls = 0;     // operator new / new[] (all overloads)
  std::uint64_t malloc_calls = 0;  // malloc / calloc / realloc (also reached by operator new)
  const char* first_kind = nullptr;
  std::size_t first_size = 0;
  void* first_stack[48] = {};
  int first_depth = 0;
};
AllocStats g_stats;

void note(const char* kind, std::size_t size, bool is_new) {
  if (!t_counting || t_in_hook) return;
  t_in_hook = true;
  if (is_new) ++g_stats.new_calls;
  else ++g_stats.malloc_calls;
  if (g_stats.first_kind == nullptr) {
    g_stats.first_kind = kind;
    g_stats.first_size = size;
    g_stats.first_depth = backtrace(g_stats.first_stack, 48);
  }
  t_in_hook = false;
}

// Out of line, so that GCC does not see operator new's pointer reach free() and warn
// (-Wmismatched-new-delete): in this binary that pairing is the definition.
[[gnu::noinline]] void release(void* p) noexcept { std::free(p); }

void* checked(void* p) {
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

void* aligned(std::size_t size, std::align_val_t al) {
  std::size_t a = static_cast<std::size_t>(al);
  return std::aligned_alloc(a, (size + a - 1) / a * a);
}

}  // namespace

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
// Without a sanitizer, malloc is interposed too (glibc exports its own as __libc_*), so C code
// (glibc's time formatting, libhttp-parser) is counted as well.
extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* malloc(std::size_t n) noexcept {
  note("malloc", n, false);
  return __libc_malloc(n);
}
void* calloc(std::size_t n, std::size_t m) noexcept {
  note("calloc", n * m, false);
  return __libc_calloc(n, m);
}
void* realloc(void* p, std::size_t n) noexcept {
  note("realloc", n, false);
  return __libc_realloc(p, n);
}
}
constexpr bool kCountsMalloc = true;
#else
constexpr bool kCountsMalloc = false;
#endif

void* operator new(std::size_t n) { note("operator new", n, true); return checked(std::malloc(n ? n : 1)); }
void* operator new[](std::size_t n) { note("operator new[]", n, true); return checked(std::malloc(n ? n : 1)); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { note("operator new", n, true); return std::malloc(n ? n : 1); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { note("operator new[]", n, true); return std::malloc(n ? n : 1); }
void* operator new(std::size_t n, std::align_val_t a) { note("operator new (aligned)", n, true); return checked(aligned(n, a)); }
void* operator new[](std::size_t n, std::align_val_t a) { note("operator new[] (aligned)", n, true); return checked(aligned(n, a)); }
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept { note("operator new (aligned)", n, true); return aligned(n, a); }
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept { note("operator new[] (aligned)", n, true); return aligned(n, a); }
void operator delete(void* p) noexcept { release(p); }
void operator delete[](void* p) noexcept { release(p); }
void operator delete(void* p, std::size_t) noexcept { release(p); }
void operator delete[](void* p, std::size_t) noexcept { release(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { release(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { release(p); }
void operator delete(void* p, std::align_val_t) noexcept { release(p); }
void operator delete[](void* p, std::align_val_t) noexcept { release(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { release(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { release(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { release(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { release(p); }

namespace {

using cb::http::Codec;
using cb::http::feed_status;
using cb::http::FeedResult;

// Counts allocations between construction and stop(); stop() returns a description of what was
// counted, empty if nothing.
class AllocWindow {
 public:
  AllocWindow() {
    g_stats = AllocStats{};
    t_counting = true;
  }
  ~AllocWindow() { t_counting = false; }
  std::string stop() {
    t_counting = false;
    if (g_stats.new_calls == 0 && g_stats.malloc_calls == 0) return {};
    std::string r = std::to_string(g_stats.new_calls) + " operator new and " + std::to_string(g_stats.malloc_calls) +
                    " malloc-family calls; the first, " + g_stats.first_kind + " of " +
                    std::to_string(g_stats.first_size) + " bytes, from:\n";
    char** names = backtrace_symbols(g_stats.first_stack, g_stats.first_depth);
    for (int i = 0; i < g_stats.first_depth && names != nullptr; ++i) r += std::string("    ") + names[i] + "\n";
    std::free(names);
    return r;
  }
};

void prime_backtrace() {
  void* frames[4];
  backtrace(frames, 4);  // loads libgcc's unwinder outside the measured windows
}

// The requests of the steady state: every route, both framings of a body, HEAD, 1.0 keep-alive,
// and a target longer than the small-string buffer.
const std::vector<std::string>& requests() {
  static const std::vector<std::string> r = {
      "GET / HTTP/1.1\r\nHost: t\r\n\r\n",
      "GET /plaintext HTTP/1.1\r\nHost: t\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n",
      "GET /json HTTP/1.1\r\nHost: t\r\n\r\n",
      "HEAD /json HTTP/1.1\r\nHost: t\r\n\r\n",
      "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n",
      "GET /bytes?n=1000 HTTP/1.1\r\nHost: t\r\n\r\n",
      "GET /bytes?n=oops HTTP/1.1\r\nHost: t\r\n\r\n",
      "GET /spin?us=1 HTTP/1.1\r\nHost: t\r\n\r\n",
      "GET /sleep?ms=0 HTTP/1.1\r\nHost: t\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello",
      "PUT / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
      "GET /plaintext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
      "GET /?a-long-query-string-well-beyond-the-small-string-buffer=1 HTTP/1.1\r\nHost: t\r\n\r\n",
  };
  return r;
}

// 16 pipelined requests, cycling through requests() from `start`.
std::string batch_of_16(std::size_t start) {
  std::string b;
  for (std::size_t i = 0; i < 16; ++i) b += requests()[(start + i) % requests().size()];
  return b;
}

std::string_view date_of(std::string_view out) {
  std::size_t at = out.find("\r\nDate: ");
  return at == std::string_view::npos ? std::string_view{} : out.substr(at + 8, 29);
}

// ---------------------------------------------------------------------------------------------
// Codec

TEST(CodecAlloc, SteadyStateAllocatesNothing) {
  prime_backtrace();
  std::vector<std::string> batches;
  for (std::size_t i = 0; i < requests().size(); ++i) batches.push_back(batch_of_16(i));
  Codec codec;
  std::string out;
  out.reserve(1 << 20);  // well above 16 responses of the largest request here
  // Warm-up: every request once, every batch once, and the spin calibration.
  for (const std::string& r : requests()) codec.feed(r, out), out.clear();
  for (const std::string& b : batches) codec.feed(b, out), out.clear();
  // Every request split in three too: a request split across feeds goes to http_parser, which
  // accumulates its target in the codec's target string (a whole request takes the fast path
  // and never touches it), so that string reaches its steady capacity here, not in the window.
  for (const std::string& r : requests()) {
    std::size_t a = r.size() / 3, b = 2 * r.size() / 3;
    for (std::string_view piece : {std::string_view(r).substr(0, a), std::string_view(r).substr(a, b - a),
                                   std::string_view(r).substr(b)})
      codec.feed(piece, out);
    out.clear();
  }

  std::uint64_t responses = 0, bad_status = 0, dates_seen = 1, split_feeds = 0;
  char last_date[29];
  std::memcpy(last_date, "(none yet)                   ", 29);
  std::string failure;
  {
    AllocWindow window;
    // 1000 keep-alive requests, one per feed().
    for (int i = 0; i < 1000; ++i) {
      out.clear();
      FeedResult r = codec.feed(requests()[i % requests().size()], out);
      responses += r.responses;
      bad_status += r.status != feed_status::need_more;
    }
    // 100 pipelined batches of 16.
    for (int i = 0; i < 100; ++i) {
      out.clear();
      FeedResult r = codec.feed(batches[i % batches.size()], out);
      responses += r.responses;
      bad_status += r.status != feed_status::need_more;
    }
    // Requests split in three pieces, so that the target is accumulated across feeds.
    for (int i = 0; i < 100; ++i) {
      std::string_view r = requests()[i % requests().size()];
      std::size_t a = r.size() / 3, b = 2 * r.size() / 3;
      out.clear();
      for (std::string_view piece : {r.substr(0, a), r.substr(a, b - a), r.substr(b)}) {
        FeedResult fr = codec.feed(piece, out);
        responses += fr.responses;
        bad_status += fr.status != feed_status::need_more;
        ++split_feeds;
      }
    }
    // Until the Date header has changed twice (the once-a-second reformat), at most ~3 s.
    std::memcpy(last_date, date_of(out).data(), 29);
    for (int i = 0; i < 3'000'000 && dates_seen < 3; ++i) {
      out.clear();
      FeedResult r = codec.feed(requests()[0], out);
      responses += r.responses;
      std::string_view d = date_of(out);
      if (d != std::string_view(last_date, 29)) {
        ++dates_seen;
        std::memcpy(last_date, d.data(), 29);
      }
      if (dates_seen < 3 && i % 1000 == 999) usleep(1000);
    }
    failure = window.stop();
  }
  EXPECT_EQ(failure, "");
  EXPECT_EQ(bad_status, 0u);
  EXPECT_GE(responses, 1000u + 1600u + 100u);
  EXPECT_EQ(split_feeds, 300u);
  EXPECT_EQ(dates_seen, 3u) << "the Date header never changed: the reformat path was not measured";
  if (!kCountsMalloc) GTEST_LOG_(INFO) << "malloc is owned by a sanitizer: only operator new was counted";
}

// ---------------------------------------------------------------------------------------------
// NbSession over a socketpair

struct Pair {
  int server = -1;
  int client = -1;
  Pair() {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) throw std::runtime_error("socketpair");
    server = fds[0];
    client = fds[1];
    cb::net::set_nonblocking(server);
    cb::net::set_nonblocking(client);
  }
  ~Pair() {
    close(server);
    close(client);
  }
};

// Reads everything waiting on a non-blocking fd (the session has finished writing before this is
// called); returns the byte count. Allocates nothing.
std::size_t drain(int fd, char* buf, std::size_t cap) {
  std::size_t got = 0;
  for (;;) {
    ssize_t n = read(fd, buf, cap);
    if (n <= 0) return got;
    got += static_cast<std::size_t>(n);
  }
}

TEST(NbSessionAlloc, SteadyStateAllocatesNothing) {
  prime_backtrace();
  Pair pair;
  auto scratch = std::make_unique<cb::net::IoScratch>();
  cb::net::NbSession session(pair.server);
  std::vector<char> sink(1 << 20);

  const std::string burst = batch_of_16(0);
  // A burst longer than one read buffer, so that on_readable reads more than once; its answer
  // (about 100 KiB) still fits in the socket buffer.
  std::string big_burst;
  while (big_burst.size() < cb::http::kReadBufferBytes * 3 / 2) big_burst += batch_of_16(big_burst.size() % 13);

  // Warm-up, and the size of each burst's answer (constant: the Date value has a fixed width).
  std::size_t answer = 0, big_answer = 0;
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(write(pair.client, burst.data(), burst.size()), static_cast<ssize_t>(burst.size()));
    ASSERT_EQ(session.on_readable(*scratch), cb::net::want::read);
    answer = drain(pair.client, sink.data(), sink.size());
    ASSERT_EQ(write(pair.client, big_burst.data(), big_burst.size()), static_cast<ssize_t>(big_burst.size()));
    ASSERT_EQ(session.on_readable(*scratch), cb::net::want::read);
    big_answer = drain(pair.client, sink.data(), sink.size());
  }
  ASSERT_GT(answer, 16u * 100);
  ASSERT_GT(big_answer, 50'000u);

  std::uint64_t wrong = 0;
  std::string failure;
  {
    AllocWindow window;
    for (int i = 0; i < 200; ++i) {
      wrong += write(pair.client, burst.data(), burst.size()) != static_cast<ssize_t>(burst.size());
      wrong += session.on_readable(*scratch) != cb::net::want::read;
      wrong += drain(pair.client, sink.data(), sink.size()) != answer;
    }
    for (int i = 0; i < 20; ++i) {
      wrong += write(pair.client, big_burst.data(), big_burst.size()) != static_cast<ssize_t>(big_burst.size());
      wrong += session.on_readable(*scratch) != cb::net::want::read;
      wrong += drain(pair.client, sink.data(), sink.size()) != big_answer;
    }
    failure = window.stop();
  }
  EXPECT_EQ(failure, "");
  EXPECT_EQ(wrong, 0u);
  EXPECT_TRUE(session.take_progress());
  // What a connection keeps between bursts: its empty buffers, plus the reserved high-water backlog.
  EXPECT_LE(session.held_bytes(), cb::net::NbSession(-1).held_bytes() + cb::http::kReadBufferBytes);
}

// Under back-pressure (8 responses of 60000 bytes per burst: past the high-water mark and the
// socket buffer) the held-back input reuses its buffer. Unsent output is held in out_pending_,
// whose buffer is dropped after a flush if it grew past the high-water mark (idle memory over
// allocations, by design), so a few allocations per burst are allowed; the count is printed.
TEST(NbSessionAlloc, BackPressureAllocationsAreBounded) {
  prime_backtrace();
  Pair pair;
  auto scratch = std::make_unique<cb::net::IoScratch>();
  cb::net::NbSession session(pair.server);
  std::vector<char> sink(1 << 20);
  std::string burst;
  for (int i = 0; i < 8; ++i) burst += "GET /bytes?n=60000 HTTP/1.1\r\nHost: t\r\n\r\n";

  std::uint64_t write_waits = 0;
  auto serve_burst = [&]() -> std::uint64_t {
    std::uint64_t wrong = write(pair.client, burst.data(), burst.size()) != static_cast<ssize_t>(burst.size());
    cb::net::want w = session.on_readable(*scratch);
    for (int k = 0; k < 100000 && w == cb::net::want::write; ++k) {
      ++write_waits;
      while (read(pair.client, sink.data(), sink.size()) > 0) {
      }
      w = session.on_writable(*scratch);
    }
    wrong += w != cb::net::want::read;
    while (read(pair.client, sink.data(), sink.size()) > 0) {
    }
    return wrong;
  };
  for (int i = 0; i < 3; ++i) ASSERT_EQ(serve_burst(), 0u);

  std::uint64_t wrong = 0;
  AllocWindow window;
  for (int i = 0; i < 50; ++i) wrong += serve_burst();
  std::uint64_t news = g_stats.new_calls;
  std::string what = window.stop();
  EXPECT_EQ(wrong, 0u);
  RecordProperty("new_per_burst_x100", static_cast<int>(news * 100 / 50));
  std::printf("back-pressure: %.2f operator new per burst of 8 x 60000-byte responses%s%s\n", news / 50.0,
              what.empty() ? "" : "; first: ", what.substr(0, what.find('\n')).c_str());
  EXPECT_GT(write_waits, 50u) << "the socket never filled: back-pressure was not exercised";
  // At most one buffer for unsent bytes per wait for writability.
  EXPECT_LE(news, write_waits);
}

}  // namespace
