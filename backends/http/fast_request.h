// The codec's fast path: one tight pass over the common request shape, in the
// manner of picohttpparser, so that a pipelined GET costs a few hundred instructions instead of
// http_parser's byte-at-a-time state machine (~1,150 of the ~1,640 instructions per request that
// callgrind counted through pump and codec).
//
// Contract: parse_fast_request accepts a STRICT SUBSET of what http_parser (Debian's 2.9.4,
// HTTP_PARSER_STRICT=0) accepts, with the same result; for everything else it declines and the
// codec hands the request, from its first byte, to http_parser. So an answer can never depend on
// which path parsed the request. Accepted is exactly this shape, complete inside `in`:
//   ("GET" | "HEAD") SP origin-target SP "HTTP/1." ("0" | "1") CRLF
//   *( field-name ":" *(SP / HTAB) field-value CRLF )
//   CRLF
// where origin-target starts with '/' and holds only 0x21-0x7E except '#' (http_parser's URL
// characters without the fragment), a field name is RFC 9110 tchars, a field value is one or
// more of 0x20-0x7E / HTAB not all whitespace, and the whole head is at most kFastMaxHeadBytes.
// It declines (returns 0) on: any other method, byte, line ending (bare LF, obs-fold, CR not
// before LF) or version; a partial request; the fields http_parser frames or interprets itself
// (any name starting with Content-Length, Transfer-Encoding, Upgrade, Proxy-Connection or
// Connection, except Connection itself with a value of exactly "close" or "keep-alive", any
// case); a Host count the codec rejects (HTTP/1.1: exactly
// one, HTTP/1.0: at most one). Declining is always safe: it costs only the scan.
#pragma once
#include <http_parser.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace cb::http {

// Largest request head the fast path takes. Small enough that neither the codec's URI limit
// (kMaxUriBytes) nor its header-field limit (kMaxHeaderBytes, which counts at most 2 bytes per
// head byte) can be reached, so the fast path never has to produce a 414 or 431; large enough
// for any browser's request (~500 bytes) and every benchmark request.
inline constexpr std::size_t kFastMaxHeadBytes = 4096;

// One request the fast path understood. `target` points into the input given to
// parse_fast_request and is valid as long as that input is.
struct FastRequest {
  http_method method = HTTP_GET;  // HTTP_GET or HTTP_HEAD
  std::string_view target;
  unsigned short http_minor = 1;  // 0 or 1 (major is 1)
  bool keep_alive = true;         // http_should_keep_alive's answer for this request
};

// Returns the number of bytes of the one complete request at the start of `in` (its head, since
// the accepted shape has no body) and fills `req`, or 0 if the request does not have the shape
// above (then `req` is unspecified and nothing is consumed). Reads only inside `in`; allocates
// nothing.
std::size_t parse_fast_request(std::string_view in, FastRequest& req);

}  // namespace cb::http
