// Job-queue microbenchmarks: the worker pool's hand-off (cb::queue::JobQueue), with and without
// the GVL emulation (cb::queue::Gvl), as worker-pool uses them.
//
// BM_Queue_Shared, BM_Queue_PerWorker (producers:P/consumers:C/gvl:0|1): throughput of hand-offs.
//   P producer threads push jobs and C consumer threads pop them: one queue shared by all
//   consumers (--queues shared), or one queue per consumer with each job going to a random one
//   (--queues per-worker; xorshift, as the worker pool picks). One iteration hands off a batch of
//   kBatchJobs jobs, split evenly between the producers; items = jobs, so ns/op is the cost of
//   one hand-off under saturation (lock, ring, the futex wake of a sleeping consumer when there
//   is one, and the consumer's share of the lock traffic). A consumer's "work" on a job is to
//   count it (one atomic add, standing in for the worker pool's emit back to its loop).
//   gvl:1: consumers hold the GVL while working and release it only while blocked on an empty
//   queue, exactly as worker-pool --gvl's workers do (JobQueue::pop's before_block/after_wake).
//   Producers do not take it (in worker-pool the loop thread also does, around dispatch).
//   producers:1 with consumers:1..8 is worker-pool's shape (one loop thread, N workers);
//   producers:N with consumers:N adds contention on the producing side.
// BM_Queue_RoundTrip (gvl:0|1): latency of one hand-off to a consumer asleep on an empty shared
//   queue: push one job, the consumer wakes, pops it and replies through a futex; compare with
//   BM_Wakeup_Futex (wakeup_bench), which is the same round trip without the queue.
//
// Threads are made once per run, outside the timing; each iteration starts the producers and
// waits until the consumers have counted the batch (a few microseconds per batch, under 1 ns per
// job). Real time: the costs are waiting and switching between threads.
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "backends/queue/gvl.h"
#include "backends/queue/job_queue.h"
#include "bench/bench_support.h"

namespace {

using Job = std::uint64_t;
using Queue = cb::queue::JobQueue<Job>;

// Jobs per iteration: enough that starting and finishing a batch costs under 1 ns per job, few
// enough that the backlog stays within the queue's initial ring for one producer.
constexpr std::uint64_t kBatchJobs = 4096;
constexpr std::uint32_t kStopGeneration = UINT32_MAX;

enum class Layout { shared, per_worker };

class HandoffRig {
 public:
  HandoffRig(Layout layout, int producers, int consumers, bool gvl)
      : producers_(producers), consumers_(consumers), gvl_(gvl) {
    const int nqueues = layout == Layout::shared ? 1 : consumers;
    for (int i = 0; i < nqueues; ++i) queues_.push_back(std::make_unique<Queue>());
  }

  void start() {
    for (int i = 0; i < consumers_; ++i) {
      Queue& q = *queues_[queues_.size() == 1 ? 0 : static_cast<std::size_t>(i)];
      threads_.emplace_back([this, &q] { consume(q); });
    }
    for (int i = 0; i < producers_; ++i) threads_.emplace_back([this, i] { produce(i); });
  }

  // Runs one batch: wakes the producers and returns once every job of it has been counted.
  void run_batch() {
    ++generation_value_;
    generation_.store(generation_value_, std::memory_order_release);
    generation_.notify_all();
    std::uint32_t seen;
    while ((seen = batches_done_.load(std::memory_order_acquire)) != generation_value_)
      batches_done_.wait(seen, std::memory_order_acquire);
  }

  void stop() {
    generation_.store(kStopGeneration, std::memory_order_release);
    generation_.notify_all();
    for (auto& q : queues_) q->close();
    for (auto& t : threads_) t.join();
  }

 private:
  void produce(int index) {
    const std::uint64_t share = kBatchJobs / static_cast<std::uint64_t>(producers_);
    std::uint64_t rng = 0x9E3779B97F4A7C15ULL + static_cast<std::uint64_t>(index);  // as worker-pool seeds it
    std::uint32_t seen = 0;
    for (;;) {
      generation_.wait(seen, std::memory_order_acquire);
      seen = generation_.load(std::memory_order_acquire);
      if (seen == kStopGeneration) return;
      for (std::uint64_t j = 0; j < share; ++j) {
        Queue* q = queues_[0].get();
        if (queues_.size() > 1) {
          rng ^= rng << 13;
          rng ^= rng >> 7;
          rng ^= rng << 17;
          q = queues_[rng % queues_.size()].get();
        }
        q->push(j);
      }
    }
  }

  void consume(Queue& q) {
    gvl_.lock();
    Job job;
    while (q.pop(job, [this] { gvl_.unlock(); }, [this] { gvl_.lock(); })) {
      benchmark::DoNotOptimize(job);
      const std::uint64_t n = consumed_.fetch_add(1, std::memory_order_acq_rel) + 1;
      if (n % kBatchJobs == 0) {  // the last job of a batch: batches never overlap
        batches_done_.store(static_cast<std::uint32_t>(n / kBatchJobs), std::memory_order_release);
        batches_done_.notify_one();
      }
    }
    gvl_.unlock();
  }

  int producers_;
  int consumers_;
  cb::queue::Gvl gvl_;
  std::vector<std::unique_ptr<Queue>> queues_;
  std::vector<std::thread> threads_;
  std::uint32_t generation_value_ = 0;                // benchmark thread only
  alignas(64) std::atomic<std::uint32_t> generation_{0};  // batches started (producers wait on it)
  alignas(64) std::atomic<std::uint64_t> consumed_{0};    // jobs counted since start
  alignas(64) std::atomic<std::uint32_t> batches_done_{0};  // batches fully counted
};

void run_handoff(benchmark::State& state, Layout layout) {
  const int producers = static_cast<int>(state.range(0));
  const int consumers = static_cast<int>(state.range(1));
  const bool gvl = state.range(2) != 0;
  HandoffRig rig(layout, producers, consumers, gvl);
  rig.start();
  for (auto _ : state) rig.run_batch();
  rig.stop();
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kBatchJobs));
  state.counters["jobs_per_iteration"] = static_cast<double>(kBatchJobs);
}

void BM_Queue_Shared(benchmark::State& state) { run_handoff(state, Layout::shared); }
void BM_Queue_PerWorker(benchmark::State& state) { run_handoff(state, Layout::per_worker); }

// (producers, consumers): one producer and 1, 2, 4, 8 consumers (worker-pool's shape), then
// 2, 4, 8 of each; every pair with and without the GVL.
void handoff_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"producers", "consumers", "gvl"});
  for (int gvl : {0, 1}) {
    for (int c : {1, 2, 4, 8}) b->Args({1, c, gvl});
    for (int n : {2, 4, 8}) b->Args({n, n, gvl});
  }
  b->UseRealTime();
}
BENCHMARK(BM_Queue_Shared)->Apply(handoff_args);
BENCHMARK(BM_Queue_PerWorker)->Apply(handoff_args);

// ---- round trip through an empty queue ----------------------------------------------------------
void BM_Queue_RoundTrip(benchmark::State& state) {
  cb::queue::Gvl gvl(state.range(0) != 0);
  Queue queue;
  cb::bench::FutexReply reply;
  std::thread consumer([&] {
    gvl.lock();
    Job job;
    while (queue.pop(job, [&] { gvl.unlock(); }, [&] { gvl.lock(); })) reply.post();
    gvl.unlock();
  });
  std::uint32_t expected = 0;
  for (auto _ : state) {
    queue.push(expected);
    reply.wait(++expected);
  }
  queue.close();
  consumer.join();
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_Queue_RoundTrip)->ArgName("gvl")->Arg(0)->Arg(1)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
