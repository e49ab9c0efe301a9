// The request a handler sees and the response it returns: plain values, no ownership, no I/O.
#pragma once
#include <http_parser.h>

#include <cstdint>
#include <string_view>

namespace cb::http {

// A parsed request. Views point into the codec's storage and are valid only during the call of
// the handler that receives the request.
struct Request {
  http_method method = HTTP_GET;
  std::string_view target;  // as sent: path plus optional "?query"
  std::string_view path;
  std::string_view query;   // without the '?'; empty if none
  unsigned short http_major = 1;
  unsigned short http_minor = 1;
  bool keep_alive = true;   // after HTTP/1.0 and 1.1 keep-alive rules
};

// A response. `body` and `content_type` must be immutable data that outlives the process's use of
// it (handlers return views of static data): the codec caches formatted small responses per
// thread keyed by their address and length. `close` asks the codec to close the connection
// after this response.
struct Response {
  int status = 200;
  std::string_view content_type = "text/plain";
  std::string_view body;
  bool close = false;
};

// The reason phrase for the status codes the workload uses ("Unknown" otherwise).
std::string_view reason_phrase(int status);

}  // namespace cb::http
