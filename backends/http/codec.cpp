#include "backends/http/codec.h"

#include <time.h>

#include <bit>
#include <algorithm>
#include <charconv>
#include <climits>
#include <cstring>

#include "backends/http/fast_request.h"
#include "backends/http/handler.h"

namespace cb::http {
// IMF-fixdate (RFC 9110 5.6.7) of the current second, formatted at most once a second per thread.
// A per-thread cache is shared by every connection the thread serves and needs no lock.
struct DateCache {
  time_t second = -1;
  char text[40] = {};
  std::size_t len = 0;
};

namespace {

constexpr std::string_view kServerHeader = "Server: cbench\r\n";

// Set once by main before serving (Codec::set_keep_alive); on unless --keepalive off.
KeepAlive g_keep_alive = KeepAlive::on;

const DateCache& current_date() {
  thread_local DateCache cache;
  timespec ts{};
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);  // vDSO, no system call
  if (ts.tv_sec != cache.second) {
    tm parts{};
    gmtime_r(&ts.tv_sec, &parts);
    cache.len = strftime(cache.text, sizeof cache.text, "%a, %d %b %Y %H:%M:%S GMT", &parts);
    cache.second = ts.tv_sec;
  }
  return cache;
}

// Fully formatted responses with small static bodies (hello, json, errors), per thread, valid
// for the second of their Date. A hit is one copy instead of a dozen appends and two number
// conversions: it cut the codec's cost per pipelined hello response from about 2,090 to about
// 1,680 instructions (callgrind, batches of 16 wrk-style requests), 1,200 of the rest being
// http_parser itself. Responses are
// byte-identical with or without the cache; every model shares it.
struct CachedResponse {
  static constexpr std::size_t kMaxBytes = 320;  // holds every static response of the workload
  time_t second = -1;
  const char* body = nullptr;  // identity of the handler's static body (and of the content type)
  std::size_t body_len = 0;
  const char* content_type = nullptr;
  int status = 0;
  std::uint8_t flags = 0;  // keep_alive | http10_keep_alive << 1 | head_only << 2
  std::uint16_t len = 0;
  char bytes[kMaxBytes];
};
// Four entries cover the mixes the scenarios send (one or two routes) with room to spare.
constexpr std::size_t kResponseCacheEntries = 4;

void append_uint(std::string& out, std::uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, static_cast<std::size_t>(end - buf));
}

// Splits a request target into path and query. The absolute form ("http://host/path", which
// RFC 9112 3.2.2 says a server must accept) is reduced to its path.
void split_target(std::string_view target, Request& req) {
  if (!target.empty() && target[0] != '/') {
    std::size_t scheme_end = target.find("://");
    if (scheme_end != std::string_view::npos) {
      std::size_t path = target.find('/', scheme_end + 3);
      target = path == std::string_view::npos ? std::string_view("/") : target.substr(path);
    }
  }
  std::size_t q = target.find('?');
  req.path = target.substr(0, q);
  req.query = q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
}

// RFC 9110 5.6.2 token characters, the only ones a field name may contain, as a table: the
// check runs for every byte of every field name, and a strchr per byte cost about 100
// instructions per wrk request (callgrind, cbench-pump-drive).
struct TcharTable {
  bool is[256] = {};
  constexpr TcharTable() {
    for (int c = '0'; c <= '9'; ++c) is[c] = true;
    for (int c = 'a'; c <= 'z'; ++c) is[c] = true;
    for (int c = 'A'; c <= 'Z'; ++c) is[c] = true;
    for (char c : std::string_view("!#$%&'*+-.^_`|~")) is[static_cast<unsigned char>(c)] = true;
  }
};
constexpr TcharTable kTchar;

// "host" as a little-endian 32-bit word.
static_assert(std::endian::native == std::endian::little, "kHostWord assumes a little-endian machine");
constexpr std::uint32_t kHostWord = 'h' | ('o' << 8) | ('s' << 16) | (static_cast<std::uint32_t>('t') << 24);
inline bool is_tchar(unsigned char ch) { return kTchar.is[ch]; }
inline bool is_hex(unsigned char ch) { return (ch >= '0' && ch <= '9') || ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f'); }

}  // namespace

const http_parser_settings Codec::kSettings = [] {
  http_parser_settings s{};
  s.on_message_begin = &Codec::on_message_begin;
  s.on_url = &Codec::on_url;
  s.on_header_field = &Codec::on_header_field;
  s.on_header_value = &Codec::on_header_value;
  s.on_headers_complete = &Codec::on_headers_complete;
  s.on_body = &Codec::on_body;
  s.on_message_complete = &Codec::on_message_complete;
  return s;
}();

Codec::Codec(ParsePath path) : path_(path) { reset(); }

Codec::Codec(Codec&& o) noexcept { *this = std::move(o); }

Codec& Codec::operator=(Codec&& o) noexcept {
  parser_ = o.parser_;  // parser_.data is re-pointed at every feed(), so a move is safe
  target_ = std::move(o.target_);
  body_bytes_ = o.body_bytes_;
  responses_total_ = o.responses_total_;
  header_bytes_ = o.header_bytes_;
  error_status_ = o.error_status_;
  in_message_ = o.in_message_;
  in_header_field_ = o.in_header_field_;
  host_match_ = o.host_match_;
  host_fields_ = o.host_fields_;
  te_match_ = o.te_match_;
  te_token_ = o.te_token_;
  te_in_value_ = o.te_in_value_;
  te_chunked_ = o.te_chunked_;
  te_other_ = o.te_other_;
  framing_check_ = o.framing_check_;
  prev_tail_ = o.prev_tail_;
  keep_alive_ = o.keep_alive_;
  closing_ = o.closing_;
  path_ = o.path_;
  return *this;
}

void Codec::reset() {
  http_parser_init(&parser_, HTTP_REQUEST);
  target_.clear();
  body_bytes_ = 0;
  responses_total_ = 0;
  header_bytes_ = 0;
  error_status_ = 0;
  in_message_ = false;
  in_header_field_ = false;
  host_match_ = 0;
  host_fields_ = 0;
  te_match_ = 0;
  te_token_ = 0;
  te_in_value_ = false;
  te_chunked_ = 0;
  te_other_ = 0;
  framing_check_ = FramingCheck{};
  prev_tail_ = '\n';
  keep_alive_ = true;
  closing_ = false;
}

int Codec::on_message_begin(http_parser* p) {
  auto* c = static_cast<Codec*>(p->data);
  c->in_message_ = true;
  c->target_.clear();
  c->body_bytes_ = 0;
  c->header_bytes_ = 0;
  c->in_header_field_ = false;
  c->host_fields_ = 0;
  c->te_in_value_ = false;
  c->te_chunked_ = 0;
  c->te_other_ = 0;
  c->framing_check_.st = FramingCheck::state::idle;
  return 0;
}

int Codec::on_url(http_parser* p, const char* at, std::size_t len) {
  auto* c = static_cast<Codec*>(p->data);
  if (c->target_.size() + len > kMaxUriBytes) {
    c->error_status_ = 414;
    return -1;
  }
  c->target_.append(at, len);
  return 0;
}

int Codec::on_header_field(http_parser* p, const char* at, std::size_t len) {
  auto* c = static_cast<Codec*>(p->data);
  // Debian's libhttp_parser is built with HTTP_PARSER_STRICT=0, which lets spaces into field
  // names ("Host : x"); RFC 9112 5.1 requires a 400 for those, so the codec checks names itself.
  for (std::size_t i = 0; i < len; ++i) {
    if (!is_tchar(static_cast<unsigned char>(at[i]))) {
      c->error_status_ = 400;
      return -1;
    }
  }
  // A field name may arrive in pieces; count the ": " and CRLF once per field, and match "Host"
  // (RFC 9112 3.2: a request must have exactly one) a character at a time.
  if (!c->in_header_field_) {
    // A field line starts right after the LF that ends the line before it. http_parser takes
    // any byte after a CR that ends an empty value ("X:\rHost: t" gives a field "ost"); RFC 9112
    // 2.2 makes that bare CR invalid.
    if ((at > c->in_begin_ ? at[-1] : c->prev_tail_) != '\n') {
      c->error_status_ = 400;
      return -1;
    }
    c->header_bytes_ += 4;
    c->host_match_ = 0;
    c->te_match_ = 0;
    if (c->te_in_value_) c->end_te_coding();
  }
  c->in_header_field_ = true;
  if (c->host_match_ == 0 && len >= 4) {
    // The usual case, a whole name in one piece: one comparison of 4 bytes, ASCII lower-cased
    // (tchars only, checked above). A longer name is not Host.
    std::uint32_t word;
    std::memcpy(&word, at, 4);
    c->host_match_ = (len == 4 && (word | 0x20202020u) == kHostWord) ? 4 : -1;
  } else {
    static constexpr char kHost[] = "host";
    for (std::size_t i = 0; i < len && c->host_match_ >= 0; ++i) {
      char ch = static_cast<char>(at[i] | 0x20);
      c->host_match_ = (c->host_match_ < 4 && ch == kHost[c->host_match_]) ? c->host_match_ + 1 : -1;
    }
  }
  // Transfer-Encoding, whose codings the codec checks itself (on_headers_complete). Most names
  // differ at the first character, so this loop is one comparison for them.
  static constexpr std::string_view kTe = "transfer-encoding";
  for (std::size_t i = 0; i < len && c->te_match_ >= 0; ++i) {
    char ch = static_cast<char>(at[i] | 0x20);
    c->te_match_ = (static_cast<std::size_t>(c->te_match_) < kTe.size() && ch == kTe[c->te_match_])
                       ? static_cast<std::int8_t>(c->te_match_ + 1) : -1;
  }
  c->header_bytes_ += static_cast<std::uint32_t>(len);
  if (c->header_bytes_ > kMaxHeaderBytes) {
    c->error_status_ = 431;
    return -1;
  }
  return 0;
}

// Ends the Transfer-Encoding coding being read, if any, and counts it.
void Codec::end_te_coding() {
  if (te_token_ == 7 || te_token_ == 8) ++te_chunked_;
  else if (te_token_ != 0) ++te_other_;
  te_token_ = 0;
}

int Codec::on_header_value(http_parser* p, const char* at, std::size_t len) {
  auto* c = static_cast<Codec*>(p->data);
  // RFC 9112 5.2: obs-fold (a field line continued on a line that starts with SP or HTAB) MUST be
  // rejected or replaced; http_parser joins it silently. A piece of a value starts after ':' and
  // OWS, or mid-value where a read ended; only a folded line puts it right after a line's LF (a
  // piece of length 0 after a value's own piece is a fold of nothing but whitespace).
  if (len > 0 || !c->in_header_field_) {
    const char* q = at;
    while (q > c->in_begin_ && (q[-1] == ' ' || q[-1] == '\t')) --q;
    if ((q > c->in_begin_ ? q[-1] : c->prev_tail_) == '\n') {
      c->error_status_ = 400;
      return -1;
    }
  }
  if (c->in_header_field_) {
    if (c->te_in_value_) c->end_te_coding();
    c->te_in_value_ = c->te_match_ == static_cast<std::int8_t>(17);
  }
  if (c->te_in_value_) {
    // The codings, a comma-separated list (RFC 9110 5.6.1), case-insensitive; "chunked" matched a
    // character at a time, as a value may arrive in pieces.
    static constexpr char kChunked[] = "chunked";
    for (std::size_t i = 0; i < len; ++i) {
      char ch = at[i];
      if (ch == ',') {
        c->end_te_coding();
      } else if (ch == ' ' || ch == '\t') {
        // OWS may follow a coding (8: "chunked" and OWS); anything after it makes another coding.
        if (c->te_token_ != 0) c->te_token_ = c->te_token_ >= 7 ? static_cast<std::int8_t>(8) : static_cast<std::int8_t>(-1);
      } else {
        ch = static_cast<char>(ch | 0x20);
        c->te_token_ = (c->te_token_ >= 0 && c->te_token_ < 7 && ch == kChunked[c->te_token_])
                           ? static_cast<std::int8_t>(c->te_token_ + 1) : static_cast<std::int8_t>(-1);
      }
    }
  }
  if (c->in_header_field_ && c->host_match_ == 4) ++c->host_fields_;
  c->in_header_field_ = false;
  c->header_bytes_ += static_cast<std::uint32_t>(len);
  if (c->header_bytes_ > kMaxHeaderBytes) {
    c->error_status_ = 431;
    return -1;
  }
  return 0;
}

int Codec::on_headers_complete(http_parser* p) {
  auto* c = static_cast<Codec*>(p->data);
  // content_length is ULLONG_MAX when absent; chunked bodies are checked in on_body.
  if (p->content_length != ULLONG_MAX && p->content_length > kMaxBodyBytes) {
    c->error_status_ = 413;
    return -1;
  }
  // RFC 9112 3.2: HTTP/1.1 requires one Host field; two are an error in any version.
  if (c->host_fields_ > 1 || (c->host_fields_ == 0 && p->http_major == 1 && p->http_minor >= 1)) {
    c->error_status_ = 400;
    return -1;
  }
  // RFC 9112 6.1 and 7: the codings are exactly one "chunked", last. http_parser refuses a list
  // that does not end in chunked (6.3: 400) and a Content-Length beside Transfer-Encoding; the
  // rest it takes silently: chunked twice (7 forbids it: 400) and other codings before chunked,
  // which this server does not implement (6.1: 501, then close, as for every codec error).
  if (c->te_in_value_) c->end_te_coding();
  c->te_in_value_ = false;
  if (c->te_chunked_ > 1) {
    c->error_status_ = 400;
    return -1;
  }
  if (c->te_chunked_ == 1 && c->te_other_ > 0 && (p->flags & F_CHUNKED)) {
    c->error_status_ = 501;
    return -1;
  }
  c->keep_alive_ = http_should_keep_alive(p) != 0;
  // Check the byte that ends the head (http_parser takes any byte after its CR) and, for a chunked
  // body, the framing after it: pause here so that feed() knows where that byte is (http_parser
  // returns with it not yet consumed). Only requests the fast path declined get here.
  c->framing_check_.st = FramingCheck::state::head_lf;
  c->framing_check_.chunked = (p->flags & F_CHUNKED) != 0;
  http_parser_pause(p, 1);
  return 0;
}

Codec::FramingCheck::Scan Codec::FramingCheck::scan(const char* in, std::size_t n) {
  Scan r;
  std::size_t i = 0;
  auto fail = [&] {
    r.bytes = i;
    r.error = true;
    return r;
  };
  while (i < n) {
    const unsigned char ch = static_cast<unsigned char>(in[i]);
    switch (st) {
      case state::idle: r.bytes = i; r.done = true; return r;
      case state::head_lf:  // the head's last line end must be CRLF or LF (RFC 9112 2.2), not a bare CR
        if (ch != '\n') return fail();
        if (!chunked) {  // a Content-Length body or none: http_parser frames it exactly
          st = state::idle;
          r.bytes = n;
          r.done = true;
          return r;
        }
        st = state::size_start;
        break;
      case state::size_start:
        size = 0;
        if (!is_hex(ch)) return fail();
        st = state::size;
        [[fallthrough]];
      case state::size:
        if (is_hex(ch)) {
          if (size > (UINT64_MAX >> 4)) return fail();  // over 64 bits
          size = size << 4 | static_cast<std::uint64_t>(ch <= '9' ? ch - '0' : (ch | 0x20) - 'a' + 10);
        } else if (ch == ';') {
          st = state::ext;
        } else if (ch == ' ' || ch == '\t') {
          st = state::bws;  // RFC 9112 7.1.1: BWS, allowed only before ';'
        } else if (ch == '\r') {
          st = state::size_lf;
        } else {
          return fail();
        }
        break;
      case state::bws:
        if (ch == ';') st = state::ext;
        else if (ch != ' ' && ch != '\t') return fail();
        break;
      case state::ext:  // names, values, quoted strings: any visible byte, SP or HTAB; no CTL or DEL
        if (ch == '\r') st = state::size_lf;
        else if ((ch < 0x20 && ch != '\t') || ch == 0x7f) return fail();
        break;
      case state::size_lf:
        if (ch != '\n') return fail();
        st = size == 0 ? state::trailer_start : state::data;
        break;
      case state::data: {
        const std::uint64_t take = std::min<std::uint64_t>(size, n - i);
        size -= take;
        i += static_cast<std::size_t>(take);
        if (size == 0) st = state::data_cr;
        continue;
      }
      case state::data_cr:
        if (ch != '\r') return fail();
        st = state::data_lf;
        break;
      case state::data_lf:
        if (ch != '\n') return fail();
        st = state::size_start;
        break;
      case state::trailer_start:  // a field line, or the CRLF that ends the message (7.1.2)
        if (ch == '\r') st = state::end_lf;
        else if (ch == ' ' || ch == '\t' || ch == '\n') return fail();  // obs-fold (5.2), bare LF
        else st = state::trailer;
        break;
      case state::trailer:  // the field itself is checked by the header callbacks
        if (ch == '\r') st = state::trailer_lf;
        else if (ch == '\n') return fail();
        break;
      case state::trailer_lf:
        if (ch != '\n') return fail();
        st = state::trailer_start;
        break;
      case state::end_lf:
        if (ch != '\n') return fail();
        st = state::idle;
        r.bytes = i + 1;
        r.done = true;
        return r;
    }
    ++i;
  }
  r.bytes = n;
  return r;
}

int Codec::on_body(http_parser* p, const char*, std::size_t len) {
  auto* c = static_cast<Codec*>(p->data);
  c->body_bytes_ += len;
  if (c->body_bytes_ > kMaxBodyBytes) {
    c->error_status_ = 413;
    return -1;
  }
  return 0;
}

int Codec::on_message_complete(http_parser* p) {
  auto* c = static_cast<Codec*>(p->data);
  // Answer it here, inside the parser's run over the input: one http_parser_execute per feed
  // instead of one per pipelined request. Pause (http_parser_execute returns right after this
  // request) only where feed() must decide: a closing response, or output at the high-water
  // mark, before the next pipelined request is parsed.
  // With the fast path on, pause after every request, so that feed() tries the fast path again on
  // the next one (a slow request does not make the rest of the input slow).
  c->in_message_ = false;
  c->respond(Head{static_cast<http_method>(p->method), p->http_major, p->http_minor, c->keep_alive_, p->upgrade != 0},
             c->target_, *c->out_);
  ++c->feed_responses_;
  if (c->closing_ || c->out_->size() >= c->out_high_water_bytes_ || c->path_ == ParsePath::fast_path)
    http_parser_pause(p, 1);
  return 0;
}

int Codec::error_status_for_parser() const {
  if (error_status_ != 0) return error_status_;
  switch (HTTP_PARSER_ERRNO(&parser_)) {
    case HPE_HEADER_OVERFLOW: return 431;  // the library's own bound (80 KiB), e.g. endless whitespace
    default: return 400;
  }
}

namespace {
ResponseStyle g_response_style = ResponseStyle::standard;  // written before threads start (main)
}  // namespace

void set_response_style(ResponseStyle style) { g_response_style = style; }
ResponseStyle response_style() { return g_response_style; }

void Codec::serialize(const Response& resp, bool keep_alive, bool http10_keep_alive, bool head_only,
                      std::string& out) {
  if (g_response_style == ResponseStyle::published && resp.status == 200 && keep_alive && !http10_keep_alive) {
    out.append("HTTP/1.1 200 OK\nContent-Length: ");
    append_uint(out, resp.body.size());
    out.append("\n\n");
    if (!head_only) out.append(resp.body);
    return;
  }
  thread_local CachedResponse cache[kResponseCacheEntries];
  thread_local std::size_t next_victim = 0;
  thread_local std::size_t last_hit = 0;  // pipelined requests mostly repeat: try it first
  const DateCache& date = current_date();
  const std::uint8_t flags = static_cast<std::uint8_t>(keep_alive | (http10_keep_alive << 1) | (head_only << 2));
  auto matches = [&](const CachedResponse& e) {
    return e.second == date.second && e.body == resp.body.data() && e.body_len == resp.body.size() &&
           e.content_type == resp.content_type.data() && e.status == resp.status && e.flags == flags;
  };
  if (matches(cache[last_hit])) {
    out.append(cache[last_hit].bytes, cache[last_hit].len);
    return;
  }
  for (std::size_t i = 0; i < kResponseCacheEntries; ++i) {
    if (matches(cache[i])) {
      last_hit = i;
      out.append(cache[i].bytes, cache[i].len);
      return;
    }
  }
  const std::size_t start = out.size();
  serialize_uncached(resp, keep_alive, http10_keep_alive, head_only, date, out);
  const std::size_t len = out.size() - start;
  if (len <= CachedResponse::kMaxBytes) {
    CachedResponse& e = cache[next_victim++ % kResponseCacheEntries];
    e.second = date.second;
    e.body = resp.body.data();
    e.body_len = resp.body.size();
    e.content_type = resp.content_type.data();
    e.status = resp.status;
    e.flags = flags;
    e.len = static_cast<std::uint16_t>(len);
    std::memcpy(e.bytes, out.data() + start, len);
  }
}

void Codec::serialize_uncached(const Response& resp, bool keep_alive, bool http10_keep_alive, bool head_only,
                               const DateCache& date, std::string& out) {
  out.append("HTTP/1.1 ");
  append_uint(out, static_cast<std::uint64_t>(resp.status));
  out.push_back(' ');
  out.append(reason_phrase(resp.status));
  out.append("\r\n");
  out.append(kServerHeader);
  out.append("Date: ");
  out.append(date.text, date.len);
  out.append("\r\nContent-Type: ");
  out.append(resp.content_type);
  out.append("\r\nContent-Length: ");
  append_uint(out, resp.body.size());
  out.append("\r\n");
  if (!keep_alive) {
    out.append("Connection: close\r\n");
  } else if (http10_keep_alive) {
    out.append("Connection: keep-alive\r\n");
  }
  out.append("\r\n");
  if (!head_only) out.append(resp.body);
}

void Codec::set_keep_alive(KeepAlive policy) { g_keep_alive = policy; }

void Codec::respond(const Head& head, std::string_view target, std::string& out) {
  Request req;
  req.method = head.method;
  req.target = target;
  split_target(req.target, req);
  req.http_major = head.http_major;
  req.http_minor = head.http_minor;
  req.keep_alive = head.keep_alive;
  Response resp = handle(req);
  bool keep = head.keep_alive && !resp.close && g_keep_alive == KeepAlive::on;
  // CONNECT and Upgrade hand the connection to another protocol; this workload has none.
  if (head.upgrade) keep = false;
  serialize(resp, keep, keep && req.http_major == 1 && req.http_minor == 0, req.method == HTTP_HEAD, out);
  ++responses_total_;
  if (!keep) closing_ = true;
}

void Codec::respond_error(int status, std::string& out) {
  std::string_view body;
  switch (status) {
    case 413: body = "413 Content Too Large\n"; break;
    case 414: body = "414 URI Too Long\n"; break;
    case 431: body = "431 Request Header Fields Too Large\n"; break;
    case 501: body = "501 Not Implemented\n"; break;
    default: body = "400 Bad Request\n"; break;
  }
  serialize(Response{status, "text/plain", body, true}, false, false, false, out);
  ++responses_total_;
  closing_ = true;
}

FeedResult Codec::feed(std::string_view in, std::string& out, std::size_t out_high_water_bytes) {
  FeedResult result;
  parser_.data = this;
  out_ = &out;
  out_high_water_bytes_ = out_high_water_bytes;
  feed_responses_ = 0;
  in_begin_ = in.data();
  std::size_t off = 0;
  while (!closing_ && off < in.size()) {
    if (out.size() >= out_high_water_bytes) {
      result.status = feed_status::output_full;
      break;
    }
    // Between requests, try the fast path first; it consumes a whole request or nothing, in
    // which case http_parser parses this request from its first byte (and pauses after it).
    if (path_ == ParsePath::fast_path && !in_message_) {
      FastRequest fast;
      if (std::size_t n = parse_fast_request(in.substr(off), fast); n != 0) {
        respond(Head{fast.method, 1, fast.http_minor, fast.keep_alive, false}, fast.target, out);
        ++feed_responses_;
        off += n;
        continue;
      }
    }
    // In a chunked body, the strict check runs first and http_parser gets only the bytes it
    // passed: up to the end of the message, or up to an invalid byte. An error http_parser finds
    // before that byte (a 413) still wins, so the answer does not depend on how input was split.
    std::size_t limit = in.size();
    bool framing_error = false;
    if (framing_check_.st != FramingCheck::state::idle) {
      const FramingCheck::Scan s = framing_check_.scan(in.data() + off, in.size() - off);
      limit = off + s.bytes;
      framing_error = s.error;
    }
    if (limit > off) off += http_parser_execute(&parser_, &kSettings, in.data() + off, limit - off);
    const http_errno err = HTTP_PARSER_ERRNO(&parser_);
    if (err == HPE_PAUSED) {
      // Paused by on_message_complete after answering (a close or a full output): resume, and let
      // the loop's conditions decide whether to parse on.
      http_parser_pause(&parser_, 0);
      continue;
    }
    if (err != HPE_OK || framing_error) {
      respond_error(err != HPE_OK ? error_status_for_parser() : 400, out);
      ++feed_responses_;
      break;
    }
    // No error and no pause: the parser consumed everything it was given.
    off = limit;
  }
  for (std::size_t i = std::min(off, in.size()); i > 0; --i) {
    if (in[i - 1] != ' ' && in[i - 1] != '\t') {
      prev_tail_ = in[i - 1];
      break;
    }
  }
  out_ = nullptr;
  result.responses = feed_responses_;
  if (closing_) result.status = feed_status::closing;
  result.consumed_bytes = closing_ ? in.size() : off;
  return result;
}

}  // namespace cb::http
