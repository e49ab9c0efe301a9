#include "backends/http/fast_request.h"

#include <algorithm>
#include <cstring>

#ifdef __SSE2__  // every x86-64 CPU; elsewhere the byte-table loop alone
#include <emmintrin.h>
#endif

namespace cb::http {
namespace {

// Byte classes as one table, so that every scan below is one load and one test per byte.
enum : std::uint8_t {
  kTchar = 1,   // RFC 9110 5.6.2 token character (field names)
  kTarget = 2,  // request-target character the fast path takes: 0x21-0x7E except '#'
  kValue = 4,   // field-value character the fast path takes: 0x20-0x7E and HTAB
};

struct ByteClasses {
  std::uint8_t of[256] = {};
  constexpr ByteClasses() {
    for (int c = 0x21; c <= 0x7e; ++c)
      if (c != '#') of[c] |= kTarget;
    for (int c = 0x20; c <= 0x7e; ++c) of[c] |= kValue;
    of['\t'] |= kValue;
    for (int c = '0'; c <= '9'; ++c) of[c] |= kTchar;
    for (int c = 'a'; c <= 'z'; ++c) of[c] |= kTchar;
    for (int c = 'A'; c <= 'Z'; ++c) of[c] |= kTchar;
    for (char c : std::string_view("!#$%&'*+-.^_`|~")) of[static_cast<unsigned char>(c)] |= kTchar;
  }
};
constexpr ByteClasses kClasses;

inline bool is(const char* p, std::uint8_t cls) { return (kClasses.of[static_cast<unsigned char>(*p)] & cls) != 0; }

// Advances p while it points at bytes of class `cls`, never past end. Unrolled by four: field
// names are short, and the tail of a longer run after the 16-byte scans below.
inline const char* skip(const char* p, const char* end, std::uint8_t cls) {
  while (end - p >= 4) {
    if (!is(p, cls)) return p;
    if (!is(p + 1, cls)) return p + 1;
    if (!is(p + 2, cls)) return p + 2;
    if (!is(p + 3, cls)) return p + 3;
    p += 4;
  }
  while (p < end && is(p, cls)) ++p;
  return p;
}

// skip() for kValue (sixteen bytes a step with SSE2 while sixteen remain): a field value is the
// longest run of a request ("127.0.0.1:8080", a User-Agent), picohttpparser's findchar_fast idea
// with SSE2 instead of SSE4.2. Reads only inside [p, end).
inline const char* skip_value(const char* p, const char* end) {
#ifdef __SSE2__
  const __m128i below = _mm_set1_epi8(0x1f), del = _mm_set1_epi8(0x7f), tab = _mm_set1_epi8('\t');
  while (end - p >= 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    // 0x20-0x7E: above 0x1F as signed bytes (0x80-0xFF are negative) and not DEL; or HTAB.
    const __m128i ok = _mm_or_si128(_mm_andnot_si128(_mm_cmpeq_epi8(v, del), _mm_cmpgt_epi8(v, below)),
                                    _mm_cmpeq_epi8(v, tab));
    const unsigned bad = ~static_cast<unsigned>(_mm_movemask_epi8(ok)) & 0xffffu;
    if (bad != 0) return p + __builtin_ctz(bad);
    p += 16;
  }
#endif
  return skip(p, end, kValue);
}

// skip() for kTarget, as skip_value: 0x21-0x7E except '#'.
inline const char* skip_target(const char* p, const char* end) {
#ifdef __SSE2__
  const __m128i space = _mm_set1_epi8(0x20), del = _mm_set1_epi8(0x7f), hash = _mm_set1_epi8('#');
  while (end - p >= 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i no = _mm_or_si128(_mm_cmpeq_epi8(v, del), _mm_cmpeq_epi8(v, hash));
    const __m128i ok = _mm_andnot_si128(no, _mm_cmpgt_epi8(v, space));
    const unsigned bad = ~static_cast<unsigned>(_mm_movemask_epi8(ok)) & 0xffffu;
    if (bad != 0) return p + __builtin_ctz(bad);
    p += 16;
  }
#endif
  return skip(p, end, kTarget);
}

// True if `s` equals `lower` ignoring ASCII case. `lower` holds only lower-case letters and '-',
// and `s` only tchars, so OR-ing 0x20 maps exactly the upper-case letters (as http_parser's
// LOWER does) and nothing else onto `lower`'s characters.
inline bool equals_lower(const char* s, std::size_t len, std::string_view lower) {
  if (len != lower.size()) return false;
  for (std::size_t i = 0; i < len; ++i)
    if ((s[i] | 0x20) != lower[i]) return false;
  return true;
}

// Connection values: the value bytes are 0x20-0x7E or HTAB, and OR-ing 0x20 maps only upper-case
// letters onto lower-case ones among the characters of "close" and "keep-alive" ('-' is 0x2D,
// and 0x0D cannot occur in a value).
inline bool value_is(const char* s, std::size_t len, std::string_view lower) { return equals_lower(s, len, lower); }

// What a field name means to http_parser and the codec.
enum class field : std::uint8_t { other, host, connection, refuse };

// True if `s` starts with `lower`, ignoring ASCII case (as equals_lower).
inline bool starts_lower(const char* s, std::size_t len, std::string_view lower) {
  return len >= lower.size() && equals_lower(s, lower.size(), lower);
}

// http_parser matches the names it interprets a character at a time, and a name that merely
// STARTS with one of them can keep its meaning (differential test: "Transfer-Encodingnked:
// chunked" is a 400 in libhttp-parser 2.9.4), so every name with such a prefix is declined,
// except an exact "Connection".
inline field classify(const char* name, std::size_t len) {
  if (len == 4) return equals_lower(name, len, "host") ? field::host : field::other;
  switch (name[0] | 0x20) {
    case 'c':
      if (starts_lower(name, len, "connection")) return len == 10 ? field::connection : field::refuse;
      return starts_lower(name, len, "content-length") ? field::refuse : field::other;
    case 't': return starts_lower(name, len, "transfer-encoding") ? field::refuse : field::other;
    case 'u': return starts_lower(name, len, "upgrade") ? field::refuse : field::other;
    case 'p': return starts_lower(name, len, "proxy-connection") ? field::refuse : field::other;
    default: return field::other;
  }
}

}  // namespace

std::size_t parse_fast_request(std::string_view in, FastRequest& req) {
  const char* const begin = in.data();
  const char* p = begin;
  const char* const end = begin + std::min(in.size(), kFastMaxHeadBytes);

  // Request line.
  if (end - p >= 4 && std::memcmp(p, "GET ", 4) == 0) {
    req.method = HTTP_GET;
    p += 4;
  } else if (end - p >= 5 && std::memcmp(p, "HEAD ", 5) == 0) {
    req.method = HTTP_HEAD;
    p += 5;
  } else {
    return 0;
  }
  const char* target = p;
  if (p == end || *p != '/') return 0;
  p = skip_target(p + 1, end);
  if (end - p < 11 || *p != ' ') return 0;  // SP "HTTP/1.x" CR LF
  req.target = std::string_view(target, static_cast<std::size_t>(p - target));
  ++p;
  if (std::memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') || p[8] != '\r' || p[9] != '\n') return 0;
  req.http_minor = static_cast<unsigned short>(p[7] - '0');
  p += 10;

  // Header fields, up to the empty line.
  unsigned hosts = 0;
  bool conn_close = false, conn_keep_alive = false;
  for (;;) {
    if (end - p < 2) return 0;
    if (p[0] == '\r') {
      if (p[1] != '\n') return 0;
      p += 2;
      break;
    }
    const char* name = p;
    p = skip(p, end, kTchar);
    if (p == name || p == end || *p != ':') return 0;
    const field f = classify(name, static_cast<std::size_t>(p - name));
    if (f == field::refuse) return 0;
    ++p;
    while (p < end && (*p == ' ' || *p == '\t')) ++p;
    const char* value = p;
    p = skip_value(p, end);
    if (p == value || end - p < 2 || p[0] != '\r' || p[1] != '\n') return 0;  // empty, partial or bad byte
    const std::size_t value_len = static_cast<std::size_t>(p - value);
    p += 2;
    if (f == field::host) {
      ++hosts;
    } else if (f == field::connection) {
      if (value_is(value, value_len, "close")) conn_close = true;
      else if (value_is(value, value_len, "keep-alive")) conn_keep_alive = true;
      else return 0;  // a token list, "upgrade", trailing whitespace: http_parser decides
    }
  }
  // RFC 9112 3.2, as the codec enforces it: the slow path answers the 400.
  if (hosts > 1 || (hosts == 0 && req.http_minor == 1)) return 0;
  // http_should_keep_alive: 1.1 unless "close"; 1.0 only with "keep-alive".
  req.keep_alive = req.http_minor == 1 ? !conn_close : conn_keep_alive;
  return static_cast<std::size_t>(p - begin);
}

}  // namespace cb::http
