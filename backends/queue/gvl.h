// An emulation of Ruby's global VM lock (GVL), to test the published explanation of why the
// worker-thread servers were slower ("the cost associated with the GVL, and contention for the
// job queue") in a language that has no such lock.
//
// What it covers: one process-wide lock that a thread must hold to run "Ruby code" (request
// handling, event dispatch), released around blocking waits (an empty job queue, a blocking
// poll), as Ruby releases it around blocking calls. What it does not: Ruby's 100 ms time-slice
// timer that forces a holder to yield when others wait, its FIFO hand-off order, and the
// interpreter's own cost; std::mutex is neither fair nor FIFO, so a holder that retakes the lock
// at once may win again (Ruby's handoff would usually pass it on).
#pragma once
#include <mutex>

namespace cb::queue {

class Gvl {
 public:
  explicit Gvl(bool enabled) : enabled_(enabled) {}
  void lock() {
    if (enabled_) mu_.lock();
  }
  void unlock() {
    if (enabled_) mu_.unlock();
  }
  bool enabled() const { return enabled_; }

 private:
  bool enabled_;
  std::mutex mu_;
};

}  // namespace cb::queue
