// Start-up of a model's thread pool, shared so every multi-threaded model fails the same way.
#pragma once
#include <functional>
#include <string_view>

namespace cb::server {

// Runs body(i) for i in [0, n) on n threads and joins them all. If a thread cannot be created
// (out of threads or memory), calls abort_all() — which must make the bodies already running
// return — prints "cbench-server: MODEL: unable to start N threads: REASON", joins what started
// and returns 1. Returns 0 once every body has returned normally.
int run_on_threads(std::string_view model, int n, const std::function<void(int)>& body,
                   const std::function<void()>& abort_all);

}  // namespace cb::server
