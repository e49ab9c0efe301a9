// Start-up of a model's thread pool, shared so every multi-threaded model fails the same way.
#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "backends/server/model.h"

namespace cb::server {

// Runs body(i) for i in [0, n) on n threads and joins them all. If a thread cannot be created
// (out of threads or memory), calls abort_all() — which must make the bodies already running
// return — prints "cbench-server: MODEL: unable to start N threads: REASON", joins what started
// and returns 1. Returns 0 once every body has returned normally.
int run_on_threads(std::string_view model, int n, const std::function<void(int)>& body,
                   const std::function<void()>& abort_all);

// The start-up of every model that runs one independent loop per listener, each on its own
// thread (floor, libuv, multi-reactor): makes a Loop(listen_fd, args...) per listener, registers
// its stop() with `control`, runs each loop's run() on its own thread and joins them. Loop needs:
//   bool ok() const   false if its construction failed (the loop has printed why)
//   int run()         serves on the calling thread until stop(); returns 0, or 1 on failure
//   void stop()       thread-safe, non-blocking, idempotent, callable before and after run()
// Returns 1 if a loop failed to construct, to start or to run, else 0. The loops are shared with
// the stop functions, which may still be returning when the threads have been joined.
template <class Loop, class... Args>
int run_loop_per_listener(std::string_view model, Control& control, const Args&... args) {
  std::vector<std::shared_ptr<Loop>> loops;
  for (int listen_fd : control.listeners()) {
    loops.push_back(std::make_shared<Loop>(listen_fd, args...));
    if (!loops.back()->ok()) return 1;  // before any thread starts: nothing to stop yet
  }
  for (auto& l : loops) control.on_stop([l] { l->stop(); });
  std::atomic<int> failed{0};
  int status = run_on_threads(
      model, static_cast<int>(loops.size()),
      [&](int i) {
        if (loops[static_cast<std::size_t>(i)]->run() != 0) failed.store(1);
      },
      [&loops] {
        for (auto& l : loops) l->stop();
      });
  return status != 0 ? status : failed.load();
}

}  // namespace cb::server
