// Table-driven tests of the shared HTTP codec (backends/http/codec.*), in the style of
// picohttpparser's test.c: one line per case with a label. Every case is fed in one piece, one
// byte at a time, and split at every byte boundary (two pieces); a pipelined input is also split
// at every pair of boundaries (three pieces). Every split must give the same bytes as one feed
// (Date values masked). Every piece is placed so that its last byte is the last readable byte
// before a PROT_NONE page: a read past the end of the input crashes the test.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <limits>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backends/http/codec.h"
#include "backends/http/limits.h"
#include "tests/unit/guarded_buffer.h"

namespace {

using namespace std::string_literals;
using cb::http::Codec;
using cb::http::feed_status;
using cb::http::FeedResult;
using cb::http::kMaxBodyBytes;
using cb::http::kMaxBytesBody;
using cb::http::kMaxHeaderBytes;
using cb::http::kMaxUriBytes;
using cb::http::kOutputHighWaterBytes;

constexpr std::size_t kUnbounded = std::numeric_limits<std::size_t>::max();

// ---------------------------------------------------------------------------------------------
// Byte helpers

std::string escape(std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  std::string r;
  for (unsigned char c : s) {
    if (c == '\r') r += "\\r";
    else if (c == '\n') r += "\\n";
    else if (c == '\\') r += "\\\\";
    else if (c < 0x20 || c >= 0x7f) r += "\\x", r += kHex[c >> 4], r += kHex[c & 15];
    else r += static_cast<char>(c);
  }
  return r;
}

// Compares byte strings; on a difference reports the sizes and the first differing offset with
// some context from both sides (the outputs can be megabytes long).
::testing::AssertionResult same_bytes(std::string_view expected, std::string_view actual) {
  if (expected == actual) return ::testing::AssertionSuccess();
  std::size_t i = 0;
  while (i < expected.size() && i < actual.size() && expected[i] == actual[i]) ++i;
  auto around = [i](std::string_view s) {
    std::size_t from = i > 60 ? i - 60 : 0;
    return escape(s.substr(std::min(from, s.size()), 160));
  };
  return ::testing::AssertionFailure()
         << "expected " << expected.size() << " bytes, got " << actual.size()
         << "; first difference at byte " << i << "\n  expected: \"" << around(expected)
         << "\"\n  actual:   \"" << around(actual) << "\"";
}

// True if `v` is an IMF-fixdate (RFC 9110 5.6.7), e.g. "Sun, 06 Nov 1994 08:49:37 GMT", whose
// day name matches its date.
bool is_imf_fixdate(std::string_view v) {
  static constexpr std::string_view kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr std::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  if (v.size() != 29) return false;
  auto digits = [v](std::size_t at, std::size_t n, int& out) {
    out = 0;
    for (std::size_t i = at; i < at + n; ++i) {
      if (v[i] < '0' || v[i] > '9') return false;
      out = out * 10 + (v[i] - '0');
    }
    return true;
  };
  int day = 0, year = 0, hh = 0, mm = 0, ss = 0;
  int wday = static_cast<int>(std::find(std::begin(kDays), std::end(kDays), v.substr(0, 3)) - std::begin(kDays));
  int mon = static_cast<int>(std::find(std::begin(kMonths), std::end(kMonths), v.substr(8, 3)) - std::begin(kMonths));
  if (wday == 7 || mon == 12) return false;
  if (v.substr(3, 2) != ", " || v[7] != ' ' || v[11] != ' ' || v[16] != ' ' || v[19] != ':' ||
      v[22] != ':' || v.substr(25) != " GMT")
    return false;
  if (!digits(5, 2, day) || !digits(12, 4, year) || !digits(17, 2, hh) || !digits(20, 2, mm) ||
      !digits(23, 2, ss))
    return false;
  if (day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60) return false;
  tm parts{};
  parts.tm_year = year - 1900;
  parts.tm_mon = mon;
  parts.tm_mday = day;
  parts.tm_hour = hh;
  parts.tm_min = mm;
  parts.tm_sec = ss;
  time_t t = timegm(&parts);
  tm back{};
  gmtime_r(&t, &back);
  return back.tm_wday == wday && back.tm_mday == day && back.tm_mon == mon;
}

// Replaces the value of every Date header with "DATE". Any value that is not an IMF-fixdate is
// reported in *bad.
std::string mask_dates(std::string_view s, std::string* bad) {
  static constexpr std::string_view kDate = "\r\nDate: ";
  std::string r;
  r.reserve(s.size());
  std::size_t from = 0;
  for (;;) {
    std::size_t at = s.find(kDate, from);
    if (at == std::string_view::npos) break;
    std::size_t value = at + kDate.size();
    std::size_t eol = s.find("\r\n", value);
    if (eol == std::string_view::npos) eol = s.size();
    std::string_view v = s.substr(value, eol - value);
    if (!is_imf_fixdate(v) && bad) *bad += "bad Date value \"" + escape(v) + "\"; ";
    r.append(s.substr(from, value - from));
    r += "DATE";
    from = eol;
  }
  r.append(s.substr(from));
  return r;
}

// ---------------------------------------------------------------------------------------------
// Expected responses (Date masked)

enum class conn { none, close, keep_alive };  // which Connection header the response carries

std::string response(std::string_view status, std::string_view content_type, std::string_view body,
                     conn c = conn::none, bool head = false) {
  std::string r = "HTTP/1.1 ";
  r += status;
  r += "\r\nServer: cbench\r\nDate: DATE\r\nContent-Type: ";
  r += content_type;
  r += "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  if (c == conn::close) r += "Connection: close\r\n";
  if (c == conn::keep_alive) r += "Connection: keep-alive\r\n";
  r += "\r\n";
  if (!head) r += body;
  return r;
}

std::string hello(conn c = conn::none) { return response("200 OK", "text/plain", "Hello, world!", c); }
std::string hello_head(conn c = conn::none) { return response("200 OK", "text/plain", "Hello, world!", c, true); }
std::string json(conn c = conn::none) {
  return response("200 OK", "application/json", "{\"message\":\"Hello, World!\"}", c);
}
std::string bytes(std::size_t n, conn c = conn::none) { return response("200 OK", "text/plain", std::string(n, 'x'), c); }
std::string not_found(conn c = conn::none, bool head = false) {
  return response("404 Not Found", "text/plain", "404 Not Found\n", c, head);
}
std::string not_allowed(conn c = conn::none) {
  return response("405 Method Not Allowed", "text/plain", "405 Method Not Allowed\n", c);
}
// A handler's 400 for a bad route parameter: not a framing error, so the connection stays open.
std::string bad_param(std::string_view body) { return response("400 Bad Request", "text/plain", body); }
// The codec's own errors: a 4xx, then a close.
std::string bad_request() { return response("400 Bad Request", "text/plain", "400 Bad Request\n", conn::close); }
std::string too_large() { return response("413 Content Too Large", "text/plain", "413 Content Too Large\n", conn::close); }
std::string uri_too_long() { return response("414 URI Too Long", "text/plain", "414 URI Too Long\n", conn::close); }
std::string not_implemented() {
  return response("501 Not Implemented", "text/plain", "501 Not Implemented\n", conn::close);
}
std::string fields_too_large() {
  return response("431 Request Header Fields Too Large", "text/plain", "431 Request Header Fields Too Large\n",
                  conn::close);
}

std::string repeat(const std::string& s, int n) {
  std::string r;
  for (int i = 0; i < n; ++i) r += s;
  return r;
}

// Requests whose size is set by a limit.

// GET of "/?aaa..." whose request target is exactly `target_bytes` long (routed to "/").
std::string get_target_of(std::size_t target_bytes) {
  return "GET /?" + std::string(target_bytes - 2, 'a') + " HTTP/1.1\r\nHost: t\r\n\r\n";
}
// GET / whose header fields (names, values, ": " and CRLF) total exactly `section_bytes`.
std::string get_header_section_of(std::size_t section_bytes) {
  const std::size_t host = std::string_view("Host: t\r\n").size();
  const std::size_t pad_overhead = std::string_view("X-Pad: \r\n").size();
  return "GET / HTTP/1.1\r\nHost: t\r\nX-Pad: " + std::string(section_bytes - host - pad_overhead, 'p') +
         "\r\n\r\n";
}
std::string post_with_body(std::size_t body_bytes) {
  return "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(body_bytes) + "\r\n\r\n" +
         std::string(body_bytes, 'b');
}
// A chunked POST whose body totals `body_bytes`, in chunks of at most 64 KiB.
std::string post_chunked(std::size_t body_bytes) {
  std::string r = "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
  static const char kHex[] = "0123456789abcdef";
  while (body_bytes > 0) {
    std::size_t n = std::min<std::size_t>(body_bytes, 64 * 1024);
    std::string size;
    for (std::size_t v = n; v > 0; v >>= 4) size.insert(size.begin(), kHex[v & 15]);
    r += size + "\r\n" + std::string(n, 'c') + "\r\n";
    body_bytes -= n;
  }
  return r + "0\r\n\r\n";
}

// ---------------------------------------------------------------------------------------------
// The table

struct Case {
  std::string label;
  std::string input;
  std::string expected;  // every response byte, Date values as "DATE"
  feed_status status;    // after all of input: need_more or closing
  std::uint32_t responses;
  bool mid_request = false;  // checked when status is need_more
};

constexpr feed_status more = feed_status::need_more;
constexpr feed_status closing = feed_status::closing;

const std::string kGet = "GET / HTTP/1.1\r\nHost: t\r\n\r\n";
const std::string kGetJson = "GET /json HTTP/1.1\r\nHost: t\r\n\r\n";

std::vector<Case> make_cases() {
  const std::string bytes_400 = "400 Bad Request: /bytes?n=N, N <= 4194304\n";
  const std::string spin_400 = "400 Bad Request: /spin?us=N, N <= 1000000\n";
  const std::string sleep_400 = "400 Bad Request: /sleep?ms=N, N <= 10000\n";
  std::vector<Case> t = {
      // label                                     input                                                                   expected                                        status  responses
      // --- routes and statuses
      {"GET /", kGet, hello(), more, 1},
      {"GET /plaintext", "GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n", hello(), more, 1},
      {"GET /json", kGetJson, json(), more, 1},
      {"GET /?q=1: query ignored", "GET /?q=1 HTTP/1.1\r\nHost: t\r\n\r\n", hello(), more, 1},
      {"GET /nope: 404", "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n", not_found(), more, 1},
      {"GET /plaintext/: 404", "GET /plaintext/ HTTP/1.1\r\nHost: t\r\n\r\n", not_found(), more, 1},
      {"GET /JSON: paths are case-sensitive", "GET /JSON HTTP/1.1\r\nHost: t\r\n\r\n", not_found(), more, 1},
      {"GET /bytes?n=0", "GET /bytes?n=0 HTTP/1.1\r\nHost: t\r\n\r\n", bytes(0), more, 1},
      {"GET /bytes?n=5", "GET /bytes?n=5 HTTP/1.1\r\nHost: t\r\n\r\n", bytes(5), more, 1},
      {"GET /bytes?x=1&n=3: n anywhere in query", "GET /bytes?x=1&n=3 HTTP/1.1\r\nHost: t\r\n\r\n", bytes(3), more, 1},
      {"GET /bytes?n=4194304: the cap", "GET /bytes?n=4194304 HTTP/1.1\r\nHost: t\r\n\r\n", bytes(kMaxBytesBody), more, 1},
      {"GET /bytes?n=4194305: over the cap 400", "GET /bytes?n=4194305 HTTP/1.1\r\nHost: t\r\n\r\n", bad_param(bytes_400), more, 1},
      {"GET /bytes: missing n 400", "GET /bytes HTTP/1.1\r\nHost: t\r\n\r\n", bad_param(bytes_400), more, 1},
      {"GET /bytes?n=: empty n 400", "GET /bytes?n= HTTP/1.1\r\nHost: t\r\n\r\n", bad_param(bytes_400), more, 1},
      {"GET /bytes?n=-1: negative n 400", "GET /bytes?n=-1 HTTP/1.1\r\nHost: t\r\n\r\n", bad_param(bytes_400), more, 1},
      {"GET /bytes?n=12abc: trailing junk 400", "GET /bytes?n=12abc HTTP/1.1\r\nHost: t\r\n\r\n", bad_param(bytes_400), more, 1},
      {"GET /bytes?n=2^64: overflow 400", "GET /bytes?n=18446744073709551616 HTTP/1.1\r\nHost: t\r\n\r\n", bad_param(bytes_400), more, 1},
      {"GET /spin?us=0", "GET /spin?us=0 HTTP/1.1\r\nHost: t\r\n\r\n", hello(), more, 1},
      {"GET /spin?us=20", "GET /spin?us=20 HTTP/1.1\r\nHost: t\r\n\r\n", hello(), more, 1},
      {"GET /spin?us=1000001: over the cap 400", "GET /spin?us=1000001 HTTP/1.1\r\nHost: t\r\n\r\n", bad_param(spin_400), more, 1},
      {"GET /spin: missing us 400", "GET /spin HTTP/1.1\r\nHost: t\r\n\r\n", bad_param(spin_400), more, 1},
      {"GET /sleep?ms=0", "GET /sleep?ms=0 HTTP/1.1\r\nHost: t\r\n\r\n", hello(), more, 1},
      {"GET /sleep?ms=1", "GET /sleep?ms=1 HTTP/1.1\r\nHost: t\r\n\r\n", hello(), more, 1},
      {"GET /sleep?ms=10001: over the cap 400", "GET /sleep?ms=10001 HTTP/1.1\r\nHost: t\r\n\r\n", bad_param(sleep_400), more, 1},
      {"HEAD /: headers only", "HEAD / HTTP/1.1\r\nHost: t\r\n\r\n", hello_head(), more, 1},
      {"HEAD /json: headers only", "HEAD /json HTTP/1.1\r\nHost: t\r\n\r\n", response("200 OK", "application/json", "{\"message\":\"Hello, World!\"}", conn::none, true), more, 1},
      {"HEAD /bytes?n=100: length 100, no body", "HEAD /bytes?n=100 HTTP/1.1\r\nHost: t\r\n\r\n", response("200 OK", "text/plain", std::string(100, 'x'), conn::none, true), more, 1},
      {"HEAD /nope: 404 headers only", "HEAD /nope HTTP/1.1\r\nHost: t\r\n\r\n", not_found(conn::none, true), more, 1},
      {"POST /: 405", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", not_allowed(), more, 1},
      {"PUT /json: 405", "PUT /json HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", not_allowed(), more, 1},
      {"DELETE /: 405", "DELETE / HTTP/1.1\r\nHost: t\r\n\r\n", not_allowed(), more, 1},
      {"OPTIONS *: 405", "OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n", not_allowed(), more, 1},
      {"CONNECT: 405 and close (no tunnels)", "CONNECT t:443 HTTP/1.1\r\nHost: t:443\r\n\r\n", not_allowed(conn::close), closing, 1},
      {"Upgrade: websocket: 200 and close", "GET / HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n" + kGet, hello(conn::close), closing, 1},
      // --- keep-alive rules
      {"1.1 default: keep-alive, no header", kGet, hello(), more, 1},
      {"1.1 Connection: close", "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", hello(conn::close), closing, 1},
      {"1.1 Connection: CLOSE (case-insensitive)", "GET / HTTP/1.1\r\nHost: t\r\nConnection: CLOSE\r\n\r\n", hello(conn::close), closing, 1},
      {"1.1 Connection: foo, close (token list)", "GET / HTTP/1.1\r\nHost: t\r\nConnection: foo, close\r\n\r\n", hello(conn::close), closing, 1},
      {"1.1 Connection: keep-alive: no header", "GET / HTTP/1.1\r\nHost: t\r\nConnection: keep-alive\r\n\r\n", hello(), more, 1},
      {"1.1 404 keeps the connection", "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n" + kGet, not_found() + hello(), more, 2},
      {"1.1 405 keeps the connection", "DELETE / HTTP/1.1\r\nHost: t\r\n\r\n" + kGet, not_allowed() + hello(), more, 2},
      {"1.0 default: close", "GET / HTTP/1.0\r\n\r\n", hello(conn::close), closing, 1},
      {"1.0 Connection: keep-alive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", hello(conn::keep_alive), more, 1},
      {"1.0 Connection: Keep-Alive (case-insensitive)", "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", hello(conn::keep_alive), more, 1},
      {"1.0 Connection: close", "GET / HTTP/1.0\r\nConnection: close\r\n\r\n", hello(conn::close), closing, 1},
      {"1.0 404: close", "GET /nope HTTP/1.0\r\n\r\n", not_found(conn::close), closing, 1},
      {"1.0 HEAD: close, no body", "HEAD / HTTP/1.0\r\n\r\n", hello_head(conn::close), closing, 1},
      {"1.0 keep-alive then 1.0 default", "GET /json HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n" + kGet, json(conn::keep_alive) + hello(conn::close), closing, 2},
      // --- pipelining
      {"3 x GET / pipelined", repeat(kGet, 3), repeat(hello(), 3), more, 3},
      {"16 x GET /plaintext pipelined", repeat("GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n", 16), repeat(hello(), 16), more, 16},
      {"mixed routes pipelined",
       kGet + kGetJson + "HEAD / HTTP/1.1\r\nHost: t\r\n\r\nGET /nope HTTP/1.1\r\nHost: t\r\n\r\nPOST /json HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nabGET /bytes?n=3 HTTP/1.1\r\nHost: t\r\n\r\nGET /plaintext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
       hello() + json() + hello_head() + not_found() + not_allowed() + bytes(3) + hello(conn::keep_alive), more, 7},
      {"pipelined: 2nd closes, 3rd ignored", kGet + "GET /json HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" + kGet, hello() + json(conn::close), closing, 2},
      {"pipelined: last request partial", kGet + kGetJson + "GET /pla", hello() + json(), more, 2, true},
      {"pipelined: headers of last unfinished", kGet + "GET / HTTP/1.1\r\nHost: t\r\n", hello(), more, 1, true},
      {"empty lines between requests ignored", kGet + "\r\n\r\n" + kGetJson, hello() + json(), more, 2},
      // --- bodies, then the next pipelined request
      {"POST Content-Length 5, then GET", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello" + kGetJson, not_allowed() + json(), more, 2},
      {"POST body that looks like a request", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 27\r\n\r\n" + kGet + kGetJson, not_allowed() + json(), more, 2},
      {"GET with a body, then GET", "GET /json HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nxyz" + kGet, json() + hello(), more, 2},
      {"POST chunked, then GET", "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + kGet, not_allowed() + hello(), more, 2},
      {"POST chunked: ext, 2 chunks, trailer", "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n" + kGetJson, not_allowed() + json(), more, 2},
      {"POST chunked, body unfinished", "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", "", more, 0, true},
      {"POST Content-Length, body unfinished", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nhel", "", more, 0, true},
      // --- limits
      {"URI 8191 bytes (just under)", get_target_of(kMaxUriBytes - 1), hello(), more, 1},
      {"URI 8192 bytes (at the limit)", get_target_of(kMaxUriBytes), hello(), more, 1},
      {"URI 8193 bytes (over): 414", get_target_of(kMaxUriBytes + 1) + kGet, uri_too_long(), closing, 1},
      {"URI over, line unfinished: 414 at once", "GET /" + std::string(kMaxUriBytes + 100, 'a'), uri_too_long(), closing, 1},
      {"header fields 8191 bytes", get_header_section_of(kMaxHeaderBytes - 1), hello(), more, 1},
      {"header fields 8192 bytes (at the limit)", get_header_section_of(kMaxHeaderBytes), hello(), more, 1},
      {"header fields 8193 bytes: 431", get_header_section_of(kMaxHeaderBytes + 1) + kGet, fields_too_large(), closing, 1},
      {"1400 small header fields: 431", "GET / HTTP/1.1\r\n" + repeat("A: b\r\n", 1400) + "\r\n", fields_too_large(), closing, 1},
      {"header name over 8 KiB: 431", "GET / HTTP/1.1\r\n" + std::string(kMaxHeaderBytes + 1, 'N') + ": v\r\n\r\n", fields_too_large(), closing, 1},
      {"Content-Length 1 MiB, then GET", post_with_body(kMaxBodyBytes) + kGet, not_allowed() + hello(), more, 2},
      {"Content-Length 1 MiB + 1: 413 before the body", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1048577\r\n\r\nbbbb", too_large(), closing, 1},
      {"Content-Length 10^15: 413", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000000000000\r\n\r\n", too_large(), closing, 1},
      {"Content-Length 2^64: 400", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 18446744073709551616\r\n\r\n", bad_request(), closing, 1},
      {"chunked 1 MiB, then GET", post_chunked(kMaxBodyBytes) + kGet, not_allowed() + hello(), more, 2},
      {"chunked 1 MiB + 1: 413", post_chunked(kMaxBodyBytes + 1), too_large(), closing, 1},
      {"duplicate conflicting Content-Length: 400", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde", bad_request(), closing, 1},
      {"duplicate equal Content-Length: 400", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", bad_request(), closing, 1},
      {"negative Content-Length: 400", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n", bad_request(), closing, 1},
      {"non-numeric Content-Length: 400", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1x\r\n\r\n", bad_request(), closing, 1},
      {"Content-Length + chunked: 400", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", bad_request(), closing, 1},
      {"chunked + Content-Length: 400", "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", bad_request(), closing, 1},
      {"Transfer-Encoding not ending chunked: 400", "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", bad_request(), closing, 1},
      {"bad chunk size: 400", "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", bad_request(), closing, 1},
      // --- malformed input: 400 and close
      {"NUL first byte", "\0GET / HTTP/1.1\r\n\r\n"s, bad_request(), closing, 1},
      {"NUL in URI", "GET /\0 HTTP/1.1\r\nHost: t\r\n\r\n"s, bad_request(), closing, 1},
      {"NUL in header name", "GET / HTTP/1.1\r\nHost: t\r\nHo\0st: t\r\n\r\n"s, bad_request(), closing, 1},
      {"NUL in header value", "GET / HTTP/1.1\r\nHost: t\0u\r\n\r\n"s, bad_request(), closing, 1},
      {"space in header name", "GET / HTTP/1.1\r\nHost: t\r\nBad Name: x\r\n\r\n", bad_request(), closing, 1},
      {"space before colon", "GET / HTTP/1.1\r\nHost: t\r\nHost : t\r\n\r\n", bad_request(), closing, 1},
      {"space before colon in Content-Length", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length : 5\r\n\r\nhello" + kGet, bad_request(), closing, 1},
      {"whitespace before the first field", "GET / HTTP/1.1\r\n Host: t\r\n\r\n", bad_request(), closing, 1},
      {"control char in header name", "GET / HTTP/1.1\r\nHost: t\r\nX-\x01: b\r\n\r\n", bad_request(), closing, 1},
      {"DEL in header value", "GET / HTTP/1.1\r\nHost: t\r\nX-A: b\x7f\r\n\r\n", bad_request(), closing, 1},
      {"header line without colon", "GET / HTTP/1.1\r\nHost: t\r\nNoColon\r\n\r\n", bad_request(), closing, 1},
      {"lower-case method", "get / HTTP/1.1\r\nHost: t\r\n\r\n", bad_request(), closing, 1},
      {"unknown method", "FOO / HTTP/1.1\r\nHost: t\r\n\r\n", bad_request(), closing, 1},
      {"bad version HTTP/1.x", "GET / HTTP/1.x\r\nHost: t\r\n\r\n", bad_request(), closing, 1},
      {"bad version HTTPS/1.1", "GET / HTTPS/1.1\r\nHost: t\r\n\r\n", bad_request(), closing, 1},
      {"TLS ClientHello", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"s, bad_request(), closing, 1},
      {"binary garbage", "\xff\xfe\xfd\x00\x01\x02"s, bad_request(), closing, 1},
      {"text garbage", "HELLO\r\n\r\n", bad_request(), closing, 1},
      {"good request, then garbage", kGet + "@@@@\r\n\r\n" + kGet, hello() + bad_request(), closing, 2},
      {"garbage, then a good request ignored", "@@@@\r\n\r\n" + kGet, bad_request(), closing, 1},
  };
  return t;
}

const std::vector<Case>& cases() {
  static const std::vector<Case> t = make_cases();
  return t;
}

// ---------------------------------------------------------------------------------------------
// Guard pages

using cb::test::GuardedBuffer;  // tests/unit/guarded_buffer.h

std::size_t max_input_bytes() {
  std::size_t m = 0;
  for (const Case& c : cases()) m = std::max(m, c.input.size());
  return m;
}

// ---------------------------------------------------------------------------------------------
// Feeding

// What feeding some pieces produced.
struct Fed {
  std::string out;  // every byte produced, Date values not masked
  feed_status last = feed_status::need_more;
  std::uint64_t responses = 0;  // sum of FeedResult::responses
  std::string error;            // contract violations seen on the way
};

// Feeds one piece completely, as a model does: when the codec stops at the output high-water mark,
// the produced bytes are flushed and the rest of the piece is fed again.
void feed_piece(Codec& codec, std::string_view piece, Fed& fed, std::size_t high_water = kOutputHighWaterBytes) {
  std::string out;
  for (int round = 0;; ++round) {
    out.clear();
    FeedResult r = codec.feed(piece, out, high_water);
    fed.out += out;
    fed.responses += r.responses;
    fed.last = r.status;
    if (r.consumed_bytes > piece.size()) fed.error += "consumed more than given; ";
    if (r.status != feed_status::output_full) {
      if (r.consumed_bytes != piece.size()) fed.error += "need_more/closing without consuming all input; ";
      return;
    }
    if (r.consumed_bytes == piece.size()) fed.error += "output_full with all input consumed; ";
    if (round > 1000000) {
      fed.error += "no progress; ";
      return;
    }
    piece.remove_prefix(r.consumed_bytes);
  }
}

// Checks what feeding `c.input` (in whatever pieces) produced against the table.
::testing::AssertionResult matches(const Case& c, const Codec& codec, const Fed& fed) {
  if (!fed.error.empty()) return ::testing::AssertionFailure() << fed.error;
  std::string bad_dates;
  std::string masked = mask_dates(fed.out, &bad_dates);
  if (!bad_dates.empty()) return ::testing::AssertionFailure() << bad_dates;
  ::testing::AssertionResult same = same_bytes(c.expected, masked);
  if (!same) return same;
  if (fed.last != c.status)
    return ::testing::AssertionFailure() << "final status " << static_cast<int>(fed.last) << ", expected "
                                         << static_cast<int>(c.status);
  if (fed.responses != c.responses || codec.responses_total() != c.responses)
    return ::testing::AssertionFailure() << "responses " << fed.responses << " (total " << codec.responses_total()
                                         << "), expected " << c.responses;
  if (codec.closing() != (c.status == closing)) return ::testing::AssertionFailure() << "closing() disagrees with the status";
  if (c.status == more && codec.mid_request() != c.mid_request)
    return ::testing::AssertionFailure() << "mid_request() is " << codec.mid_request();
  return ::testing::AssertionSuccess();
}

// Split points to try for an input: all of them, except for inputs over 16 KiB (the 1 MiB bodies),
// where trying all would take hours: the first and last 256, 64 around the end of the first header
// section, and one every 64 KiB-ish in between.
std::vector<std::size_t> split_points(std::string_view input) {
  const std::size_t n = input.size();
  std::vector<std::size_t> ks;
  if (n <= 16 * 1024) {
    for (std::size_t k = 0; k <= n; ++k) ks.push_back(k);
    return ks;
  }
  std::set<std::size_t> s;
  for (std::size_t k = 0; k <= 256; ++k) s.insert(k), s.insert(n - k);
  std::size_t head_end = input.find("\r\n\r\n");
  if (head_end != std::string_view::npos)
    for (std::size_t k = head_end > 32 ? head_end - 32 : 0; k <= std::min(n, head_end + 36); ++k) s.insert(k);
  for (std::size_t k = 0; k <= n; k += 65521) s.insert(k);  // a prime stride, so chunk boundaries vary
  return {s.begin(), s.end()};
}

// The guard works: reading one byte past a placed input faults.
TEST(GuardedBufferDeathTest, ReadPastTheEndCrashes) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  GuardedBuffer guard(100);
  std::string_view v = guard.place("GET / HTTP/1.1\r\n");
  EXPECT_EQ(v.back(), '\n');
  EXPECT_DEATH(
      {
        volatile const char* p = v.data() + v.size();
        std::printf("%c", *p);
      },
      "");
}

// ---------------------------------------------------------------------------------------------
// Table tests

TEST(CodecTable, OneFeed) {
  GuardedBuffer guard(max_input_bytes());
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.label);
    Codec codec;
    Fed fed;
    feed_piece(codec, guard.place(c.input), fed);
    EXPECT_TRUE(matches(c, codec, fed));
  }
}

// Every split point of every input: feeding [0,k) then [k,n) gives the bytes of one feed. Both
// pieces end at a guard page.
TEST(CodecTable, EverySplitPoint) {
  GuardedBuffer whole(max_input_bytes());  // the input, ending at the guard: each tail is a suffix
  GuardedBuffer head_buf(max_input_bytes());
  std::size_t splits = 0;
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.label);
    std::string_view all = whole.place(c.input);
    for (std::size_t k : split_points(c.input)) {
      Codec codec;
      Fed fed;
      feed_piece(codec, head_buf.place(all.substr(0, k)), fed);
      feed_piece(codec, all.substr(k), fed);
      ++splits;
      ::testing::AssertionResult ok = matches(c, codec, fed);
      if (!ok) {
        ADD_FAILURE() << "split at byte " << k << " of " << c.input.size() << ": " << ok.message();
        break;  // one report per case
      }
    }
  }
  RecordProperty("splits", static_cast<int>(splits));
}

// One byte per feed(), each byte alone before a guard page.
TEST(CodecTable, ByteAtATime) {
  GuardedBuffer guard(1);
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.label);
    Codec codec;
    Fed fed;
    for (char ch : c.input) feed_piece(codec, guard.place(std::string_view(&ch, 1)), fed);
    EXPECT_TRUE(matches(c, codec, fed));
  }
}

// Three pieces, [0,i) [i,j) [j,n), for every i <= j of a pipelined input that has every kind of
// framing: no body, Content-Length body, chunked body with extension and trailer, HEAD, keep-alive
// 1.0, a partial request at the end.
TEST(CodecSplit, EveryThreeWaySplitOfAPipelinedInput) {
  const Case c{"three-way",
               "GET /json HTTP/1.1\r\nHost: t\r\n\r\n"
               "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"
               "HEAD /bytes?n=7 HTTP/1.1\r\nHost: t\r\n\r\n"
               "PUT / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2;x=y\r\nab\r\n0\r\nT: 1\r\n\r\n"
               "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
               "GET /by",
               json() + not_allowed() + response("200 OK", "text/plain", "xxxxxxx", conn::none, true) +
                   not_allowed() + hello(conn::keep_alive),
               more, 5, true};
  const std::size_t n = c.input.size();
  GuardedBuffer a(n), b(n), whole(n);
  std::string_view all = whole.place(c.input);
  std::size_t failures = 0, splits = 0;
  for (std::size_t i = 0; i <= n && failures < 3; ++i) {
    for (std::size_t j = i; j <= n && failures < 3; ++j) {
      Codec codec;
      Fed fed;
      feed_piece(codec, a.place(all.substr(0, i)), fed);
      feed_piece(codec, b.place(all.substr(i, j - i)), fed);
      feed_piece(codec, all.substr(j), fed);
      ++splits;
      ::testing::AssertionResult ok = matches(c, codec, fed);
      if (!ok) {
        ++failures;
        ADD_FAILURE() << "split at " << i << ", " << j << " of " << n << ": " << ok.message();
      }
    }
  }
  EXPECT_EQ(splits, (n + 1) * (n + 2) / 2);
}

// RFC 9112 requirements on the request head (framing of the body: CodecFraming below).
TEST(CodecRfc9112, HostAndAbsoluteForm) {
  const Case cases[] = {
      // RFC 9112 3.2: a 1.1 request without Host, or with two, MUST get 400.
      {"1.1 without Host: 400", "GET / HTTP/1.1\r\n\r\n", bad_request(), closing, 1},
      {"two Host fields: 400", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", bad_request(), closing, 1},
      {"two Host fields, mixed case: 400", "GET / HTTP/1.1\r\nhOsT: a\r\nHOST: b\r\n\r\n", bad_request(), closing, 1},
      {"1.0 without Host: 200", "GET / HTTP/1.0\r\n\r\n", hello(conn::close), closing, 1},
      {"Hostname is not Host: 400", "GET / HTTP/1.1\r\nHostname: a\r\n\r\n", bad_request(), closing, 1},
      // RFC 9112 3.2.2: a server MUST accept the absolute form.
      {"absolute-form target", "GET http://t/json HTTP/1.1\r\nHost: t\r\n\r\n", json(), more, 1},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.label);
    for (std::size_t k = 0; k <= c.input.size(); ++k) {  // every split point, as in the main table
      Codec codec;
      Fed fed;
      feed_piece(codec, c.input.substr(0, k), fed);
      feed_piece(codec, c.input.substr(k), fed);
      EXPECT_TRUE(matches(c, codec, fed)) << "split at " << k;
    }
  }
}

// Request smuggling: every shape where two HTTP/1.1 implementations could disagree on where a
// request ends gets a 400 (or a 413/501 where RFC 9112 names one) and a close, so that a proxy in
// front of any model can never see one request where the server sees two. The pipelined GET after
// each rejected request must not be answered. Each line names the RFC 9112 section that decides it.
TEST(CodecFraming, Rfc9112SmugglingShapes) {
  const std::string post = "POST / HTTP/1.1\r\nHost: t\r\n";
  const std::string chunked = post + "Transfer-Encoding: chunked\r\n\r\n";
  const std::string big_chunk = std::string("100001\r\n") + std::string(kMaxBodyBytes + 1, 'c');
  const Case cases[] = {
      // label                                                       input                                                                     expected          status   responses
      // 6.1: a request with both Content-Length and Transfer-Encoding MAY be rejected; a server behind a proxy must.
      {"6.1 Content-Length, then Transfer-Encoding: chunked: 400", post + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + kGet, bad_request(), closing, 1},
      {"6.1 Transfer-Encoding: chunked, then Content-Length: 400", post + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + kGet, bad_request(), closing, 1},
      {"6.1 Content-Length with Transfer-Encoding: gzip: 400", post + "Content-Length: 5\r\nTransfer-Encoding: gzip\r\n\r\nhello" + kGet, bad_request(), closing, 1},
      // 6.3 (5): differing Content-Length values are unrecoverable; equal ones MAY be merged, we reject them too.
      {"6.3 two Content-Length fields, different: 400", post + "Content-Length: 3\r\nContent-Length: 5\r\n\r\nabcde" + kGet, bad_request(), closing, 1},
      {"6.3 two Content-Length fields, equal: 400", post + "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc" + kGet, bad_request(), closing, 1},
      {"6.3 Content-Length list 3, 3: 400", post + "Content-Length: 3, 3\r\n\r\nabc" + kGet, bad_request(), closing, 1},
      {"6.3 Content-Length +3: 400", post + "Content-Length: +3\r\n\r\nabc" + kGet, bad_request(), closing, 1},
      {"6.3 Content-Length 0x3: 400", post + "Content-Length: 0x3\r\n\r\nabc" + kGet, bad_request(), closing, 1},
      // 6.3 (4): chunked not the final coding: 400 and close. 7: chunked at most once. 6.1: other codings: 501.
      {"6.3 Transfer-Encoding: chunked, gzip: 400", post + "Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n" + kGet, bad_request(), closing, 1},
      {"6.3 Transfer-Encoding: identity: 400", post + "Transfer-Encoding: identity\r\n\r\n" + kGet, bad_request(), closing, 1},
      {"6.3 Transfer-Encoding: chunkedx: 400", post + "Transfer-Encoding: chunkedx\r\n\r\n0\r\n\r\n" + kGet, bad_request(), closing, 1},
      {"6.3 Transfer-Encoding empty: 400", post + "Transfer-Encoding:\r\n\r\n0\r\n\r\n" + kGet, bad_request(), closing, 1},
      {"7 Transfer-Encoding: chunked, chunked: 400", post + "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n" + kGet, bad_request(), closing, 1},
      {"7 two Transfer-Encoding: chunked fields: 400", post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + kGet, bad_request(), closing, 1},
      {"6.1 Transfer-Encoding: gzip, chunked: 501", post + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" + kGet, not_implemented(), closing, 1},
      {"6.1 Transfer-Encoding: gzip, then chunked: 501", post + "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + kGet, not_implemented(), closing, 1},
      {"7 Transfer-Encoding: chunked and SP: accepted", post + "Transfer-Encoding:  chunked \r\n\r\n0\r\n\r\n" + kGet, not_allowed() + hello(), more, 2},
      // http_parser does not find chunked in "chunked" + HTAB and refuses it; refusing cannot be misread.
      {"6.3 Transfer-Encoding: chunked and HTAB: 400", post + "Transfer-Encoding: chunked\t\r\n\r\n0\r\n\r\n" + kGet, bad_request(), closing, 1},
      {"6.1 Transfer-Encoding: gzip , chunked (OWS): 501", post + "Transfer-Encoding: gzip , chunked \r\n\r\n0\r\n\r\n" + kGet, not_implemented(), closing, 1},
      {"7 Transfer-Encoding: CHUNKED (case-insensitive): accepted", post + "Transfer-Encoding: CHUNKED\r\n\r\n0\r\n\r\n" + kGet, not_allowed() + hello(), more, 2},
      // RFC 9110 5.6.1 asks recipients to ignore empty list elements; http_parser does not find
      // chunked last in this one and refuses it, which cannot be misread: 400 stays.
      {"6.3 Transfer-Encoding: , chunked , (empty list elements): 400", post + "Transfer-Encoding: , chunked ,\r\n\r\n0\r\n\r\n" + kGet, bad_request(), closing, 1},
      // 5.2: a server MUST reject obs-fold with 400 (or replace it with SP; rejecting cannot be misread).
      {"5.2 obs-fold (SP) in a field value: 400", "GET / HTTP/1.1\r\nHost: t\r\nX-A: a\r\n b\r\n\r\n" + kGet, bad_request(), closing, 1},
      {"5.2 obs-fold (HTAB) in a field value: 400", "GET / HTTP/1.1\r\nHost: t\r\nX-A: a\r\n\tb\r\n\r\n" + kGet, bad_request(), closing, 1},
      {"5.2 obs-fold after an empty value: 400", "GET / HTTP/1.1\r\nHost: t\r\nX-A:\r\n b\r\n\r\n" + kGet, bad_request(), closing, 1},
      {"5.2 obs-fold with bare LF: 400", "GET / HTTP/1.1\nHost: t\nX-A: a\n b\n\n" + kGet, bad_request(), closing, 1},
      {"5.2 Transfer-Encoding folded onto a second line: 400", post + "Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n" + kGet, bad_request(), closing, 1},
      {"5.2 Content-Length folded onto a second line: 400", post + "Content-Length: 1\r\n 0\r\n\r\n0123456789" + kGet, bad_request(), closing, 1},
      // 2.2: a recipient MAY take a bare LF as a line end (we do, in the request line and header
      // fields, as every model did before); a bare CR MUST be rejected or replaced: we reject.
      {"2.2 bare LF line ends in the head: accepted", "GET / HTTP/1.1\nHost: t\n\n" + kGet, hello() + hello(), more, 2},
      {"2.2 bare CR in a field value: 400", "GET / HTTP/1.1\r\nHost: t\r\nX-A: a\rb\r\n\r\n" + kGet, bad_request(), closing, 1},
      {"2.2 bare CR ending the request line: 400", "GET / HTTP/1.1\rHost: t\r\n\r\n" + kGet, bad_request(), closing, 1},
      {"2.2 bare CR ending the head: 400", "GET / HTTP/1.1\r\nHost: t\r\n\rX" + kGet, bad_request(), closing, 1},
      {"2.2 bare CR ending the head of a Content-Length request: 400", post + "Content-Length: 1\r\n\rXa" + kGet, bad_request(), closing, 1},
      {"2.2 bare CR after an empty field value: 400", "GET / HTTP/1.1\r\nHost: t\r\nX-A:\rYX-B: b\r\n\r\n" + kGet, bad_request(), closing, 1},
      {"2.2 bare CR after OWS of an empty value: 400", "GET / HTTP/1.1\r\nHost: t\r\nX-A: \rYX-B: b\r\n\r\n" + kGet, bad_request(), closing, 1},
      {"2.2 bare CR ending the head of a chunked request: 400", post + "Transfer-Encoding: chunked\r\n\rX0\r\n\r\n" + kGet, bad_request(), closing, 1},
      // 7.1: chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF, exactly.
      {"7.1 chunk data not followed by CRLF: 400", chunked + "5\r\nhelloXY0\r\n\r\n" + kGet, bad_request(), closing, 1},
      {"7.1 chunk data followed by bare LF: 400", chunked + "5\r\nhello\n0\r\n\r\n" + kGet, bad_request(), closing, 1},
      {"7.1 chunk data followed by CR and not LF: 400", chunked + "5\r\nhello\rX0\r\n\r\n" + kGet, bad_request(), closing, 1},
      {"7.1 chunk data longer than its size: 400", chunked + "3\r\nhello\r\n0\r\n\r\n" + kGet, bad_request(), closing, 1},
      {"7.1 chunk-size line ending in bare LF: 400", chunked + "5\nhello\r\n0\r\n\r\n" + kGet, bad_request(), closing, 1},
      {"7.1 chunk-size line ending in CR and not LF: 400", chunked + "5\rXhello\r\n0\r\n\r\n" + kGet, bad_request(), closing, 1},
      {"7.1 space after the chunk size: 400", chunked + "5 \r\nhello\r\n0\r\n\r\n" + kGet, bad_request(), closing, 1},
      {"7.1 two numbers in a chunk-size line: 400", chunked + "5 3\r\nhello\r\n0\r\n\r\n" + kGet, bad_request(), closing, 1},
      {"7.1 space before the chunk size: 400", chunked + " 5\r\nhello\r\n0\r\n\r\n" + kGet, bad_request(), closing, 1},
      {"7.1 0x prefix on the chunk size: 400", chunked + "0x5\r\nhello\r\n0\r\n\r\n" + kGet, bad_request(), closing, 1},
      {"7.1 bare LF inside a chunk extension: 400", chunked + "5;a\nb\r\nhello\r\n0\r\n\r\n" + kGet, bad_request(), closing, 1},
      {"7.1 control character in a chunk extension: 400", chunked + "5;a\x01\r\nhello\r\n0\r\n\r\n" + kGet, bad_request(), closing, 1},
      {"7.1.1 BWS before a chunk extension: accepted", chunked + "5 ;a=\"b c\"\r\nhello\r\n0\r\n\r\n" + kGet, not_allowed() + hello(), more, 2},
      {"7.1 chunk size 2^64: 400", chunked + "10000000000000000\r\nhello\r\n0\r\n\r\n" + kGet, bad_request(), closing, 1},
      {"7.1 chunk size 2^64 - 1: 400", chunked + "ffffffffffffffff\r\nhello\r\n0\r\n\r\n" + kGet, bad_request(), closing, 1},
      {"7.1 chunk size over the body limit: 413", chunked + big_chunk, too_large(), closing, 1},
      // 7.1.2: the trailer section is field lines, each ending in CRLF, then CRLF; no obs-fold (5.2).
      {"7.1.2 trailer field: accepted", chunked + "0\r\nX-T: 1\r\n\r\n" + kGet, not_allowed() + hello(), more, 2},
      {"7.1.2 obs-fold in a trailer field: 400", chunked + "0\r\nX-T: 1\r\n 2\r\n\r\n" + kGet, bad_request(), closing, 1},
      {"7.1.2 trailer line ending in bare LF: 400", chunked + "0\r\nX-T: 1\n\r\n" + kGet, bad_request(), closing, 1},
      {"7.1.2 last chunk ending in bare LF: 400", chunked + "0\n\r\n" + kGet, bad_request(), closing, 1},
      {"7.1.2 last chunk, then CR and not LF: 400", chunked + "0\r\n\rX" + kGet, bad_request(), closing, 1},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.label);
    for (std::size_t k : split_points(c.input)) {  // every split point, as in the main table
      Codec codec;
      Fed fed;
      feed_piece(codec, c.input.substr(0, k), fed);
      feed_piece(codec, c.input.substr(k), fed);
      ::testing::AssertionResult ok = matches(c, codec, fed);
      if (!ok) {
        ADD_FAILURE() << "split at byte " << k << " of " << c.input.size() << ": " << ok.message();
        break;  // one report per case
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Exact bytes, the Date header

TEST(CodecBytes, PlaintextExactly) {
  Codec codec;
  std::string out;
  FeedResult r = codec.feed(kGet, out);
  EXPECT_EQ(r.status, feed_status::need_more);
  EXPECT_EQ(r.consumed_bytes, kGet.size());
  EXPECT_EQ(r.responses, 1u);
  std::string bad;
  EXPECT_EQ(mask_dates(out, &bad),
            "HTTP/1.1 200 OK\r\n"
            "Server: cbench\r\n"
            "Date: DATE\r\n"
            "Content-Type: text/plain\r\n"
            "Content-Length: 13\r\n"
            "\r\n"
            "Hello, world!");
  EXPECT_EQ(bad, "");
}

TEST(CodecBytes, JsonHttp10KeepAliveExactly) {
  Codec codec;
  std::string out;
  codec.feed("GET /json HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", out);
  EXPECT_EQ(mask_dates(out, nullptr),
            "HTTP/1.1 200 OK\r\n"
            "Server: cbench\r\n"
            "Date: DATE\r\n"
            "Content-Type: application/json\r\n"
            "Content-Length: 27\r\n"
            "Connection: keep-alive\r\n"
            "\r\n"
            "{\"message\":\"Hello, World!\"}");
}

TEST(CodecBytes, ErrorExactly) {
  Codec codec;
  std::string out;
  FeedResult r = codec.feed("GET / HTTP/1.1\r\nHost: t\r\nHost : t\r\n\r\n", out);
  EXPECT_EQ(r.status, feed_status::closing);
  EXPECT_EQ(mask_dates(out, nullptr),
            "HTTP/1.1 400 Bad Request\r\n"
            "Server: cbench\r\n"
            "Date: DATE\r\n"
            "Content-Type: text/plain\r\n"
            "Content-Length: 16\r\n"
            "Connection: close\r\n"
            "\r\n"
            "400 Bad Request\n");
}

// The Date value is an IMF-fixdate (RFC 9110 5.6.7) of the current time (GMT).
TEST(CodecBytes, DateIsImfFixdateOfNow) {
  Codec codec;
  std::string out;
  time_t before = time(nullptr);
  codec.feed(kGet, out);
  time_t after = time(nullptr);
  std::size_t at = out.find("\r\nDate: ");
  ASSERT_NE(at, std::string::npos) << escape(out);
  std::string value = out.substr(at + 8, out.find("\r\n", at + 8) - at - 8);
  ASSERT_TRUE(is_imf_fixdate(value)) << value;
  tm parts{};
  ASSERT_NE(strptime(value.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &parts), nullptr) << value;
  time_t t = timegm(&parts);
  // CLOCK_REALTIME_COARSE may lag time() by a tick, so allow a second either side.
  EXPECT_GE(t, before - 1) << value;
  EXPECT_LE(t, after + 1) << value;
  // The checker itself rejects near misses.
  EXPECT_TRUE(is_imf_fixdate("Sun, 06 Nov 1994 08:49:37 GMT"));
  EXPECT_FALSE(is_imf_fixdate("Mon, 06 Nov 1994 08:49:37 GMT"));   // wrong weekday
  EXPECT_FALSE(is_imf_fixdate("Sunday, 06-Nov-94 08:49:37 GMT"));  // RFC 850 form
  EXPECT_FALSE(is_imf_fixdate("Sun Nov  6 08:49:37 1994"));        // asctime form
  EXPECT_FALSE(is_imf_fixdate("Sun, 6 Nov 1994 08:49:37 GMT"));    // day not 2 digits
  EXPECT_FALSE(is_imf_fixdate("Sun, 06 Nov 1994 08:49:37 UTC"));
}

// A response the codec writes for models that answer without a request (e.g. over capacity).
TEST(CodecBytes, SerializeServiceUnavailable) {
  std::string out = "prefix|";
  Codec::serialize(cb::http::Response{503, "text/plain", "busy\n", true}, false, false, false, out);
  EXPECT_EQ(mask_dates(out, nullptr), "prefix|" + response("503 Service Unavailable", "text/plain", "busy\n", conn::close));
  out.clear();
  Codec::serialize(cb::http::Response{200, "text/plain", "abc", false}, true, true, true, out);
  EXPECT_EQ(mask_dates(out, nullptr), response("200 OK", "text/plain", "abc", conn::keep_alive, true));
}

// ---------------------------------------------------------------------------------------------
// After a closing response

TEST(CodecClosing, FurtherInputIsConsumedAndIgnored) {
  struct Row {
    const char* label;
    std::string closing_input;
  };
  const Row rows[] = {
      {"Connection: close", "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"},
      {"HTTP/1.0", "GET / HTTP/1.0\r\n\r\n"},
      {"400", "@@@\r\n\r\n"},
      {"413", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\n"},
      {"414", "GET /" + std::string(kMaxUriBytes, 'u')},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.label);
    Codec codec;
    std::string out;
    FeedResult r = codec.feed(row.closing_input, out);
    ASSERT_EQ(r.status, feed_status::closing);
    ASSERT_EQ(r.responses, 1u);
    ASSERT_TRUE(codec.closing());
    for (std::string_view more : {std::string_view(kGet), std::string_view("garbage"), std::string_view("")}) {
      std::string out2;
      FeedResult r2 = codec.feed(more, out2);
      EXPECT_EQ(r2.status, feed_status::closing);
      EXPECT_EQ(r2.consumed_bytes, more.size());
      EXPECT_EQ(r2.responses, 0u);
      EXPECT_EQ(out2, "");
      EXPECT_EQ(codec.responses_total(), 1u);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Output high-water mark

TEST(CodecHighWater, StopsAndResumesWithIdenticalOutput) {
  constexpr int kRequests = 100;
  const std::string req = "GET /bytes?n=60000 HTTP/1.1\r\nHost: t\r\n\r\n";
  const std::string input = repeat(req, kRequests);
  const std::size_t one_response = bytes(60000).size();

  // Unbounded: everything in one call.
  Codec unbounded;
  std::string all;
  FeedResult u = unbounded.feed(input, all, kUnbounded);
  ASSERT_EQ(u.status, feed_status::need_more);
  ASSERT_EQ(u.responses, static_cast<std::uint32_t>(kRequests));

  // Bounded: the first call stops once the output reaches the mark (two responses: 60 KiB < 64 KiB).
  Codec codec;
  std::string out;
  FeedResult r = codec.feed(input, out);
  EXPECT_EQ(r.status, feed_status::output_full);
  EXPECT_LT(r.consumed_bytes, input.size());
  EXPECT_EQ(r.consumed_bytes, 2 * req.size());
  EXPECT_EQ(r.responses, 2u);
  EXPECT_GE(out.size(), kOutputHighWaterBytes);
  EXPECT_LE(out.size(), kOutputHighWaterBytes + one_response);
  EXPECT_FALSE(codec.mid_request());

  // Called again without flushing: nothing more is parsed.
  FeedResult again = codec.feed(std::string_view(input).substr(r.consumed_bytes), out);
  EXPECT_EQ(again.status, feed_status::output_full);
  EXPECT_EQ(again.consumed_bytes, 0u);
  EXPECT_EQ(again.responses, 0u);

  // Flush and feed the rest, repeatedly, as a model does.
  std::string total = out;
  std::string_view rest = std::string_view(input).substr(r.consumed_bytes);
  int calls = 1;
  while (!rest.empty()) {
    out.clear();
    FeedResult ri = codec.feed(rest, out);
    ++calls;
    ASSERT_GT(ri.consumed_bytes, 0u);
    ASSERT_LE(out.size(), kOutputHighWaterBytes + one_response);
    total += out;
    rest.remove_prefix(ri.consumed_bytes);
    ASSERT_EQ(ri.status, rest.empty() ? feed_status::need_more : feed_status::output_full);
    ASSERT_LT(calls, 10 * kRequests);
  }
  EXPECT_EQ(calls, kRequests / 2);
  EXPECT_EQ(codec.responses_total(), static_cast<std::uint64_t>(kRequests));
  EXPECT_TRUE(same_bytes(mask_dates(all, nullptr), mask_dates(total, nullptr)));
}

// The mark also holds with a small limit, with output already waiting, and with every split.
TEST(CodecHighWater, SmallMarkAndEverySplit) {
  const std::string input = repeat(kGet, 4) + kGetJson + "GET /bytes?n=2 HTTP/1.1\r\nHost: t\r\n\r\n";
  const std::string expected = repeat(hello(), 4) + json() + bytes(2);

  // A mark of one byte: one response per call.
  for (std::size_t k = 0; k <= input.size(); ++k) {
    Codec codec;
    Fed fed;
    feed_piece(codec, std::string_view(input).substr(0, k), fed, 1);
    feed_piece(codec, std::string_view(input).substr(k), fed, 1);
    ASSERT_EQ(fed.error, "") << "split " << k;
    ASSERT_EQ(mask_dates(fed.out, nullptr), expected) << "split " << k;
  }

  // Output already over the mark on entry: nothing is consumed.
  Codec codec;
  std::string out(100, '.');
  FeedResult r = codec.feed(input, out, 50);
  EXPECT_EQ(r.status, feed_status::output_full);
  EXPECT_EQ(r.consumed_bytes, 0u);
  EXPECT_EQ(out, std::string(100, '.'));
  // ... unless there is nothing to consume.
  r = codec.feed("", out, 50);
  EXPECT_EQ(r.status, feed_status::need_more);
}

// ---------------------------------------------------------------------------------------------
// Counters, mid_request, reset, move

TEST(CodecState, ResponsesAndMidRequest) {
  struct Step {
    const char* label;
    std::string in;
    std::uint32_t responses;  // by this feed
    std::uint64_t total;
    bool mid_request;
  };
  const Step steps[] = {
      {"nothing yet", "", 0, 0, false},
      {"empty lines are not a request", "\r\n", 0, 0, false},
      {"first byte of a request", "G", 0, 0, true},
      {"rest of the request line", "ET /json HTTP/1.1\r\n", 0, 0, true},
      {"end of the header", "Host: t\r\n\r\n", 1, 1, false},
      {"two and a half", kGet + kGet + "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nab", 2, 3, true},
      {"end of that body", "cd", 1, 4, false},
      {"chunked, headers only", "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n", 0, 4, true},
      {"last chunk", "0\r\n\r\n", 1, 5, false},
  };
  Codec codec;
  for (const Step& s : steps) {
    SCOPED_TRACE(s.label);
    std::string out;
    FeedResult r = codec.feed(s.in, out);
    EXPECT_EQ(r.responses, s.responses);
    EXPECT_EQ(codec.responses_total(), s.total);
    EXPECT_EQ(codec.mid_request(), s.mid_request);
    EXPECT_EQ(r.consumed_bytes, s.in.size());
    EXPECT_EQ(r.status, feed_status::need_more);
  }
}

// After reset() a codec gives exactly what a new one gives, whatever state it was in.
TEST(CodecState, ResetBehavesLikeNew) {
  const std::string probe = kGet + "GET /json HTTP/1.0\r\n\r\n";
  Codec fresh;
  std::string expected;
  FeedResult want = fresh.feed(probe, expected);

  struct Row {
    const char* label;
    std::string before;
  };
  const Row rows[] = {
      {"new", ""},
      {"mid request line", "GET /very/long/target/that/is/not/in/sso?x=1"},
      {"mid headers", "GET / HTTP/1.1\r\nHost: t\r\nX-A: b"},
      {"mid Content-Length body", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc"},
      {"mid chunked body", "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nab"},
      {"after requests", repeat(kGet, 3)},
      {"closing after Connection: close", "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"},
      {"closing after 400", "\x01\x02"},
      {"closing after 414", "GET /" + std::string(kMaxUriBytes + 1, 'a')},
      {"closing after 431", "GET / HTTP/1.1\r\nHost: t\r\nX: " + std::string(kMaxHeaderBytes, 'v')},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.label);
    Codec codec;
    std::string ignored;
    codec.feed(row.before, ignored);
    codec.reset();
    EXPECT_FALSE(codec.closing());
    EXPECT_FALSE(codec.mid_request());
    EXPECT_EQ(codec.responses_total(), 0u);
    std::string out;
    FeedResult r = codec.feed(probe, out);
    EXPECT_EQ(r.status, want.status);
    EXPECT_EQ(r.consumed_bytes, want.consumed_bytes);
    EXPECT_EQ(r.responses, want.responses);
    EXPECT_EQ(mask_dates(out, nullptr), mask_dates(expected, nullptr));
  }
}

// A Codec moved mid-request (e.g. when a vector of connections grows) carries on where it was.
TEST(CodecState, MoveMidRequest) {
  const std::string long_target = "/bytes?n=9&pad=" + std::string(100, 'p');  // beyond the small-string buffer
  const std::string input = kGet + "GET " + long_target + " HTTP/1.1\r\nHost: t\r\n\r\n" +
                            "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nabcde" + kGetJson;
  const std::string expected = hello() + bytes(9) + not_allowed() + json();
  for (std::size_t k = 0; k <= input.size(); ++k) {
    Codec a;
    std::string out;
    a.feed(std::string_view(input).substr(0, k), out);
    Codec b(std::move(a));            // move construction mid-request
    std::vector<Codec> v;
    v.emplace_back();
    v[0] = std::move(b);              // move assignment over a fresh codec
    v.emplace_back();                 // growth moves v[0] again
    v.reserve(64);
    v[0].feed(std::string_view(input).substr(k), out);
    ASSERT_EQ(mask_dates(out, nullptr), expected) << "moved after byte " << k;
    ASSERT_EQ(v[0].responses_total(), 4u);
    ASSERT_FALSE(v[0].mid_request());
  }
  // Moving over a codec with its own partial request replaces it entirely.
  Codec src, dst;
  std::string out;
  src.feed("GET /js", out);
  dst.feed("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 50\r\n\r\nxx", out);
  dst = std::move(src);
  dst.feed("on HTTP/1.1\r\nHost: t\r\n\r\n", out);
  EXPECT_EQ(mask_dates(out, nullptr), json());
}

// Two codecs are independent: interleaving their feeds changes nothing.
TEST(CodecState, CodecsAreIndependent) {
  const std::string a_in = "GET /json HTTP/1.1\r\nHost: t\r\n\r\n" + kGet;
  const std::string b_in = "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nxyz" + kGetJson;
  Codec a, b;
  std::string a_out, b_out;
  for (std::size_t i = 0; i < std::max(a_in.size(), b_in.size()); ++i) {
    if (i < a_in.size()) a.feed(std::string_view(a_in).substr(i, 1), a_out);
    if (i < b_in.size()) b.feed(std::string_view(b_in).substr(i, 1), b_out);
  }
  EXPECT_EQ(mask_dates(a_out, nullptr), json() + hello());
  EXPECT_EQ(mask_dates(b_out, nullptr), not_allowed() + json());
}

}  // namespace

// --keepalive off: every response says Connection: close and the codec closes after
// it, whatever the request asked for; pipelined requests after the first are not answered.
TEST(CodecKeepAlivePolicy, OffClosesAfterEveryResponse) {
  const std::vector<Case> t = {
      {"1.1 default", kGet, hello(conn::close), closing, 1},
      {"1.1 Connection: keep-alive", "GET / HTTP/1.1\r\nHost: t\r\nConnection: keep-alive\r\n\r\n", hello(conn::close), closing, 1},
      {"1.0 Connection: keep-alive", "GET /json HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", json(conn::close), closing, 1},
      {"pipelined: only the first answered", kGet + kGetJson + kGet, hello(conn::close), closing, 1},
      {"HEAD", "HEAD / HTTP/1.1\r\nHost: t\r\n\r\n", hello_head(conn::close), closing, 1},
      {"404 closes too", "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n" + kGet, not_found(conn::close), closing, 1},
  };
  GuardedBuffer guard(max_input_bytes());
  Codec::set_keep_alive(cb::http::KeepAlive::off);
  for (const Case& c : t) {
    SCOPED_TRACE(c.label);
    Codec codec;
    Fed fed;
    feed_piece(codec, guard.place(c.input), fed);
    EXPECT_TRUE(matches(c, codec, fed));
  }
  Codec::set_keep_alive(cb::http::KeepAlive::on);
  Codec codec;  // and back: the default policy keeps the connection
  Fed fed;
  feed_piece(codec, guard.place(kGet), fed);
  EXPECT_TRUE(matches(Case{"on again", kGet, hello(), more, 1}, codec, fed));
}
