// Responses carry a Date header that changes every second; tests that compare the bytes of two
// runs mask it. One copy for the pump, session and io_uring loop tests.
#pragma once

#include <algorithm>
#include <string>
#include <string_view>

namespace cb::test {

// Replaces every Date value (29 bytes, IMF-fixdate) with "DATE".
inline std::string mask_dates(std::string_view s) {
  std::string r;
  std::size_t from = 0;
  for (std::size_t at; (at = s.find("\r\nDate: ", from)) != std::string_view::npos;) {
    r.append(s.substr(from, at + 8 - from));
    r += "DATE";
    from = std::min(s.size(), at + 8 + 29);
  }
  r.append(s.substr(from));
  return r;
}

}  // namespace cb::test
