// The shared HTTP/1.1 codec: one per connection, I/O-free. Every model feeds it the bytes it read
// and writes the bytes it produced, so that parsing, routing and the response bytes are the same
// in every row of a table.
#pragma once
#include <http_parser.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "backends/http/limits.h"
#include "backends/http/message.h"

namespace cb::http {

struct DateCache;  // the per-thread formatted Date (codec.cpp)

// The response bytes (cbench-server --response, the scenario setting `response`). standard: the
// full header set below. published: a 200 on a keep-alive HTTP/1.1 connection is exactly
// "HTTP/1.1 200 OK\nContent-Length: N\n\n" + body (bare LF, no Server, Date or Content-Type:
// 49 bytes for "Hello, world!", as the Ruby examples of the published table answered); every
// other response (errors, closes, HTTP/1.0) stays standard. Process-wide; set once by main before
// any model thread starts, read on every response.
enum class ResponseStyle : std::uint8_t { standard, published };
void set_response_style(ResponseStyle style);
ResponseStyle response_style();

// Why the codec stopped consuming input in a call to feed().
enum class feed_status : std::uint8_t {
  need_more,   // consumed all input; a request may be partly parsed
  output_full, // stopped at the output high-water mark: flush, then feed the rest again
  closing,     // a response that closes the connection was queued; ignore further input
};

// The server's keep-alive policy (--keepalive): `off` answers every request with Connection: close
// and closes after it, as Unicorn does, whatever the request asked for.
enum class KeepAlive : std::uint8_t { on, off };

// Which parser reads requests. fast_path (the default): the common request shape is parsed by
// parse_fast_request (fast_request.h) and everything else by http_parser, one request at a time;
// http_parser_only: every request goes through http_parser. The answers are identical by
// contract; the second form exists only so that tests and benchmarks can prove and measure it.
enum class ParsePath : std::uint8_t { fast_path, http_parser_only };

struct FeedResult {
  std::size_t consumed_bytes = 0;
  feed_status status = feed_status::need_more;
  std::uint32_t responses = 0;  // responses appended by this call
};

class Codec {
 public:
  explicit Codec(ParsePath path = ParsePath::fast_path);
  Codec(Codec&&) noexcept;
  Codec& operator=(Codec&&) noexcept;
  Codec(const Codec&) = delete;
  Codec& operator=(const Codec&) = delete;

  // Parses `in`; for each complete request calls handle() and appends the response to `out`.
  // Stops when `in` is used up, when a response closes the connection (malformed input gets a
  // 4xx, or a 501 for a transfer coding other than chunked, and a close), or before parsing another request once out.size() >= out_high_water_bytes.
  // Partial requests are kept inside the codec, so consumed bytes are never fed again; bytes not
  // consumed (status output_full) must be fed again later. Never reads outside `in`; allocates
  // nothing when `out` has capacity and request targets fit the small-string buffer (15 bytes).
  FeedResult feed(std::string_view in, std::string& out,
                  std::size_t out_high_water_bytes = kOutputHighWaterBytes);

  // True once a closing response was queued: the caller flushes `out` and closes.
  bool closing() const { return closing_; }

  // True if part of a request has been received (used by idle timeouts and on EOF).
  bool mid_request() const { return in_message_; }

  // Total responses produced since construction or reset().
  std::uint64_t responses_total() const { return responses_total_; }

  // Returns the codec to the state of a new connection.
  void reset();

  // Sets the process-wide keep-alive policy used by every later response framed by feed(). Call
  // once at start-up, before any model thread runs (a plain global: read, never changed, while
  // serving). Responses a model frames itself with serialize() choose their own keep_alive.
  static void set_keep_alive(KeepAlive policy);

  // Appends a complete response (status line, Server, Date, Content-Type, Content-Length,
  // Connection when needed, body unless `head_only`) to `out`. Shared by the codec and by
  // models that answer without a request (e.g. a 503 when over capacity).
  static void serialize(const Response& resp, bool keep_alive, bool http10_keep_alive, bool head_only,
                        std::string& out);

 private:
  static void serialize_uncached(const Response& resp, bool keep_alive, bool http10_keep_alive, bool head_only,
                                 const DateCache& date, std::string& out);
  static int on_message_begin(http_parser*);
  static int on_url(http_parser*, const char*, std::size_t);
  static int on_header_field(http_parser*, const char*, std::size_t);
  static int on_header_value(http_parser*, const char*, std::size_t);
  static int on_headers_complete(http_parser*);
  static int on_body(http_parser*, const char*, std::size_t);
  static int on_message_complete(http_parser*);
  void end_te_coding();
  static const http_parser_settings kSettings;

  // What respond() needs of a parsed request, from either parser.
  struct Head {
    http_method method;
    unsigned short http_major;
    unsigned short http_minor;
    bool keep_alive;  // http_should_keep_alive
    bool upgrade;     // CONNECT or Upgrade: the connection is not kept
  };
  void respond(const Head& head, std::string_view target, std::string& out);
  void respond_error(int status, std::string& out);
  int error_status_for_parser() const;

  // Strict framing, checked on a request's bytes BEFORE http_parser sees them, from the byte
  // that ends its head (a bare CR there is invalid, RFC 9112 2.2) and, for a chunked body, to the
  // end of its trailer section (RFC 9112 7.1): Debian's non-strict http_parser takes any byte
  // after the head's last CR, any two bytes after chunk data, any byte after a chunk-size CR and
  // anything up to a CR after "5 ", so without this the two could disagree with a proxy on where
  // a request ends. Allocation-free; a few states carried across feeds.
  struct FramingCheck {
    enum class state : std::uint8_t {
      idle, head_lf, size_start, size, bws, ext, size_lf, data, data_cr, data_lf,
      trailer_start, trailer, trailer_lf, end_lf,
    };
    struct Scan {
      std::size_t bytes = 0;  // bytes of the input that belong to the message and are valid
      bool done = false;      // the message ends after `bytes`
      bool error = false;     // the byte at `bytes` breaks RFC 9112 2.2 or 7.1
    };
    // Checks `in`, the next bytes of the request (state head_lf: starting with the byte that ends
    // the head); stops after the message's last byte or at the first invalid one. A request
    // without a chunked body is done after that first byte (`bytes` is then all of `in`).
    Scan scan(const char* in, std::size_t n);
    state st = state::idle;
    std::uint64_t size = 0;  // the chunk size being read, then the data bytes still to come
    bool chunked = false;    // the body is chunked: check it after the head
  };

  http_parser parser_{};
  FramingCheck framing_check_;
  const char* in_begin_ = nullptr;  // during feed(): the input, so callbacks can look behind a value
  char prev_tail_ = '\n';           // last byte other than SP/HTAB of the input before this feed
  std::string* out_ = nullptr;            // during feed(): where on_message_complete answers
  std::size_t out_high_water_bytes_ = 0;  // during feed(): pause once out_ reaches it
  std::uint32_t feed_responses_ = 0;      // during feed(): responses appended
  std::string target_;            // request target, accumulated across reads
  std::uint64_t body_bytes_ = 0;  // body bytes seen for the current request (chunked limit)
  std::uint64_t responses_total_ = 0;
  std::uint32_t header_bytes_ = 0;  // header fields of the current request (approximate: +4 per field)
  std::uint16_t error_status_ = 0;  // set by a callback that rejects the request
  bool in_message_ = false;
  bool in_header_field_ = false;  // the last header callback was for a field name
  std::int8_t host_match_ = 0;    // chars of "host" matched in the current field name; -1: not Host
  std::uint8_t host_fields_ = 0;  // Host fields in the current request
  std::int8_t te_match_ = 0;      // chars of "transfer-encoding" matched in the current field name; -1: not it
  std::int8_t te_token_ = 0;      // chars of "chunked" matched in the current coding (8: and OWS); -1: another coding; 0: none yet
  bool te_in_value_ = false;      // the last value callback was for a Transfer-Encoding field
  std::uint8_t te_chunked_ = 0;   // "chunked" codings in the current request's Transfer-Encoding fields
  std::uint8_t te_other_ = 0;     // other codings in them
  bool keep_alive_ = true;
  bool closing_ = false;
  ParsePath path_ = ParsePath::fast_path;  // kept by reset()
};

}  // namespace cb::http
