// A blocking multi-producer multi-consumer job queue: a mutex, a condition variable and a ring
// buffer. The same construction as Ruby's Thread::Queue, which the published worker-thread
// servers used, so that its costs (a lock per push and pop, a futex wake-up per hand-off to a
// sleeping worker) are the ones measured.
#pragma once
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <vector>

namespace cb::queue {

template <class T>
class JobQueue {
 public:
  // Initial ring capacity. Grows by doubling (under the lock) when full, and never shrinks, so a
  // queue that has seen its peak depth allocates nothing more.
  static constexpr std::size_t kInitialCapacity = 1024;

  JobQueue() : ring_(kInitialCapacity) {}

  // Appends a job and wakes one waiting consumer. Returns false (dropping nothing: the job is not
  // taken) if the queue is closed.
  bool push(T job) {
    {
      std::lock_guard lock(mu_);
      if (closed_) return false;
      if (size_ == ring_.size()) grow();
      ring_[(head_ + size_) % ring_.size()] = std::move(job);
      ++size_;
      if (waiting_ == 0) return true;  // nobody asleep: skip the futex wake
    }
    cv_.notify_one();
    return true;
  }

  // Takes the oldest job, blocking while the queue is empty. Calls before_block() just before
  // it sleeps and after_wake() after it has woken and released the queue's lock (the GVL
  // emulation releases and retakes its lock there, as Ruby does around a blocking Queue#pop).
  // Returns false once the queue is closed and empty.
  template <class BeforeBlock, class AfterWake>
  bool pop(T& out, BeforeBlock&& before_block, AfterWake&& after_wake) {
    bool slept = false;
    {
      std::unique_lock lock(mu_);
      if (size_ == 0 && !closed_) {
        before_block();
        slept = true;
        ++waiting_;
        cv_.wait(lock, [&] { return size_ > 0 || closed_; });
        --waiting_;
      }
      if (size_ > 0) {
        out = std::move(ring_[head_]);
        head_ = (head_ + 1) % ring_.size();
        --size_;
      } else {
        lock.unlock();
        if (slept) after_wake();
        return false;
      }
    }
    if (slept) after_wake();
    return true;
  }

  bool pop(T& out) {
    return pop(out, [] {}, [] {});
  }

  // Takes the oldest job without blocking (Ruby's `until q.empty?; q.shift; end` in one lock).
  // Returns false if the queue is empty (open or closed).
  bool try_pop(T& out) {
    std::lock_guard lock(mu_);
    if (size_ == 0) return false;
    out = std::move(ring_[head_]);
    head_ = (head_ + 1) % ring_.size();
    --size_;
    return true;
  }

  // Wakes every consumer; pops return what is left, then false. Further pushes are refused.
  void close() {
    {
      std::lock_guard lock(mu_);
      closed_ = true;
    }
    cv_.notify_all();
  }

  std::size_t size() const {
    std::lock_guard lock(mu_);
    return size_;
  }

 private:
  void grow() {
    std::vector<T> bigger(ring_.size() * 2);
    for (std::size_t i = 0; i < size_; ++i) bigger[i] = std::move(ring_[(head_ + i) % ring_.size()]);
    ring_.swap(bigger);
    head_ = 0;
  }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<T> ring_;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
  std::size_t waiting_ = 0;
  bool closed_ = false;
};

}  // namespace cb::queue
