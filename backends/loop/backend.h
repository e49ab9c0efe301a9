// Which pull-loop implementation runs (cbench-server --backend libev|epoll), as its own small
// header so that server Options can hold the parsed value without the loop's API.
#pragma once
#include <cstdint>

namespace cb::loop {

enum class Backend : std::uint8_t { libev, epoll };

}  // namespace cb::loop
