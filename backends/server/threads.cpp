#include "backends/server/threads.h"

#include <cstdio>
#include <system_error>
#include <thread>
#include <vector>

namespace cb::server {

int run_on_threads(std::string_view model, int n, const std::function<void(int)>& body,
                   const std::function<void()>& abort_all) {
  int status = 0;
  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(n));
  try {
    for (int i = 0; i < n; ++i) threads.emplace_back(body, i);
  } catch (const std::system_error& e) {
    std::fprintf(stderr, "cbench-server: %.*s: unable to start %d threads: %s\n", static_cast<int>(model.size()),
                 model.data(), n, e.what());
    abort_all();
    status = 1;
  }
  for (auto& t : threads) t.join();
  return status;
}

}  // namespace cb::server
