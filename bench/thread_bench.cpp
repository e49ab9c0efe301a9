// Thread microbenchmarks: what thread-per-connection pays per connection, in time and memory.
//
// BM_Thread_CreateJoin/default_stack|stack_64k: pthread_create + pthread_join of a thread that
//   returns at once. default_stack is what std::thread gets (glibc's default: RLIMIT_STACK,
//   usually 8 MiB, mapped lazily); stack_64k sets pthread_attr_setstacksize(64 KiB). glibc keeps
//   the stacks of joined threads in a cache and reuses them, as it does in the server when
//   connections come and go. items = threads.
// BM_Thread_IdleMemory/default_stack|stack_64k: memory of kIdleThreads threads parked in a futex
//   wait (an idle connection's thread blocks in recv the same way), as counters per thread:
//   rss_kib_per_thread (resident memory growth of the process: stack pages touched, the thread
//   descriptor and TLS), virtual_kib_per_thread (address space: the whole stack and its guard
//   page) and kernel_stack_kib_per_thread (growth of /proc/meminfo KernelStack, the kernel's
//   per-thread stack; machine-wide, so other processes starting or ending threads at the same
//   time blur it). The benchmark maps the stacks itself (anonymous memory with a guard page, as
//   glibc maps them) and unmaps them after the join: glibc's stack cache would otherwise hand a
//   second measurement stacks that are already resident. Its time (creating, parking, releasing
//   and joining the threads) is not a figure to use.
#include <benchmark/benchmark.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "bench/bench_support.h"

namespace {

// The small stack: 64 KiB is enough for the serving code of thread-per-connection (its buffers
// are on the heap) and a size other servers choose for the same reason.
constexpr std::size_t kSmallStackBytes = 64 * 1024;
// Parked threads per measurement: enough that a page more or less per thread shows clearly in
// the process's RSS, few enough to stay far below any thread limit.
constexpr int kIdleThreads = 200;

void* return_at_once(void*) { return nullptr; }

// The stack size a default-attribute thread gets (glibc's: from RLIMIT_STACK at start-up).
std::size_t default_stack_bytes() {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  std::size_t bytes = 0;
  pthread_attr_getstacksize(&attr, &bytes);
  pthread_attr_destroy(&attr);
  return bytes;
}

// stack_bytes == 0: default attributes.
void BM_Thread_CreateJoin(benchmark::State& state, std::size_t stack_bytes) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  if (stack_bytes != 0) {
    if (int err = pthread_attr_setstacksize(&attr, stack_bytes); err != 0) {
      state.SkipWithError((std::string("pthread_attr_setstacksize: ") + std::strerror(err)).c_str());
      pthread_attr_destroy(&attr);
      return;
    }
  }
  for (auto _ : state) {
    pthread_t t;
    if (int err = pthread_create(&t, &attr, &return_at_once, nullptr); err != 0) {
      state.SkipWithError((std::string("pthread_create: ") + std::strerror(err)).c_str());
      break;
    }
    pthread_join(t, nullptr);
  }
  pthread_attr_destroy(&attr);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["stack_kib"] = static_cast<double>((stack_bytes ? stack_bytes : default_stack_bytes()) / 1024);
}
BENCHMARK_CAPTURE(BM_Thread_CreateJoin, default_stack, std::size_t{0})->UseRealTime();
BENCHMARK_CAPTURE(BM_Thread_CreateJoin, stack_64k, kSmallStackBytes)->UseRealTime();

struct Parking {
  std::atomic<std::uint32_t> parked{0};
  std::atomic<std::uint32_t> released{0};
};

void* park(void* arg) {
  auto* p = static_cast<Parking*>(arg);
  p->parked.fetch_add(1, std::memory_order_acq_rel);
  p->parked.notify_one();
  while (p->released.load(std::memory_order_acquire) == 0) p->released.wait(0, std::memory_order_acquire);
  return nullptr;
}

struct Stack {
  void* base = nullptr;  // the mapping, guard page first
  std::size_t mapped = 0;
};

void BM_Thread_IdleMemory(benchmark::State& state, std::size_t stack_bytes) {
  if (stack_bytes == 0) stack_bytes = default_stack_bytes();
  const std::size_t guard = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  double rss_sum = 0, virtual_sum = 0, kernel_sum = 0;
  for (auto _ : state) {
    Parking parking;
    std::vector<Stack> stacks;
    std::vector<pthread_t> threads;
    stacks.reserve(kIdleThreads);
    threads.reserve(kIdleThreads);
    std::string error;
    const cb::bench::MemoryKib before = cb::bench::memory_kib();
    const std::uint64_t kernel_before = cb::bench::kernel_stack_kib();
    for (int i = 0; i < kIdleThreads && error.empty(); ++i) {
      Stack s;
      s.mapped = stack_bytes + guard;
      s.base = mmap(nullptr, s.mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
      if (s.base == MAP_FAILED) {
        error = std::string("mmap of a thread stack: ") + std::strerror(errno);
        break;
      }
      stacks.push_back(s);
      mprotect(s.base, guard, PROT_NONE);
      pthread_attr_t attr;
      pthread_attr_init(&attr);
      pthread_attr_setstack(&attr, static_cast<char*>(s.base) + guard, stack_bytes);
      pthread_t t;
      int err = pthread_create(&t, &attr, &park, &parking);
      pthread_attr_destroy(&attr);
      if (err != 0) {
        error = std::string("pthread_create: ") + std::strerror(err);
        break;
      }
      threads.push_back(t);
    }
    std::uint32_t n;
    while ((n = parking.parked.load(std::memory_order_acquire)) != threads.size()) parking.parked.wait(n);
    const cb::bench::MemoryKib after = cb::bench::memory_kib();
    const std::uint64_t kernel_after = cb::bench::kernel_stack_kib();
    parking.released.store(1, std::memory_order_release);
    parking.released.notify_all();
    for (pthread_t t : threads) pthread_join(t, nullptr);
    for (const Stack& s : stacks) munmap(s.base, s.mapped);
    if (!error.empty()) {
      state.SkipWithError(error.c_str());
      break;
    }
    rss_sum += static_cast<double>(after.resident) - static_cast<double>(before.resident);
    virtual_sum += static_cast<double>(after.virtual_size) - static_cast<double>(before.virtual_size);
    kernel_sum += static_cast<double>(kernel_after) - static_cast<double>(kernel_before);
  }
  const double samples = static_cast<double>(state.iterations()) * kIdleThreads;
  if (samples > 0) {
    state.counters["rss_kib_per_thread"] = rss_sum / samples;
    state.counters["virtual_kib_per_thread"] = virtual_sum / samples;
    state.counters["kernel_stack_kib_per_thread"] = kernel_sum / samples;
  }
  state.counters["threads"] = kIdleThreads;
  state.counters["stack_kib"] = static_cast<double>(stack_bytes / 1024);
}
// Three measurements per run: the counters are their mean.
BENCHMARK_CAPTURE(BM_Thread_IdleMemory, default_stack, std::size_t{0})->Iterations(3)->UseRealTime();
BENCHMARK_CAPTURE(BM_Thread_IdleMemory, stack_64k, kSmallStackBytes)->Iterations(3)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
