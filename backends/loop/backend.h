// Which pull-loop implementation runs (the --backend libev|epoll option of the models built on
// the pull loop, backends/ever/served.h), as its own small header for callers that name an
// implementation without needing the loop's API (benchmarks, tests).
#pragma once
#include <cstdint>

namespace cb::loop {

enum class Backend : std::uint8_t { libev, epoll };

}  // namespace cb::loop
