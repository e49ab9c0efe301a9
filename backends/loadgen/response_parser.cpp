#include "backends/loadgen/response_parser.h"

#include <charconv>

namespace cb::loadgen {
namespace {

// ASCII case folding: header names and the "chunked" token are ASCII (RFC 9110 token), and
// std::tolower's locale lookup per byte was the parser's largest cost per response.
constexpr unsigned char ascii_lower(unsigned char c) { return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(static_cast<unsigned char>(a[i])) != ascii_lower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Lines end in LF with an optional CR before it: RFC 9112 section 2.2 lets a recipient take a
// bare LF as a line terminator, and the published table's servers answer with bare LFs ("HTTP/1.1
// 200 OK\nContent-Length: 13\n\nHello, world!", cbench-server --response published), which wrk
// reads. The line starting at `from` in buf: its text without the terminator, and where the next
// line starts; npos as next when no LF has arrived yet.
struct Line {
  std::string_view text;
  std::size_t next;
};

Line line_at(std::string_view buf, std::size_t from) {
  std::size_t lf = buf.find('\n', from);
  if (lf == std::string_view::npos) return {{}, std::string_view::npos};
  std::size_t end = lf > from && buf[lf - 1] == '\r' ? lf - 1 : lf;
  return {buf.substr(from, end - from), lf + 1};
}

// Where the header section that starts at buf[0] ends (one past its empty line), or npos when its
// empty line has not arrived yet.
std::size_t head_end(std::string_view buf) {
  for (std::size_t lf = buf.find('\n'); lf != std::string_view::npos; lf = buf.find('\n', lf + 1)) {
    std::size_t next = lf + 1;
    if (next < buf.size() && buf[next] == '\r') ++next;
    if (next < buf.size() && buf[next] == '\n') return next + 1;
  }
  return std::string_view::npos;
}

}  // namespace

parse_status ResponseParser::parse_head(std::string_view buf) {
  std::size_t end = head_end(buf);
  if (end == std::string_view::npos) {
    // Reject early what can never become a status line, so garbage is caught at once.
    std::string_view prefix = buf.substr(0, 7);
    if (std::string_view("HTTP/1.").substr(0, prefix.size()) != prefix) return parse_status::invalid;
    return buf.size() > kMaxHeaderBytes ? parse_status::invalid : parse_status::partial;
  }
  if (end > kMaxHeaderBytes) return parse_status::invalid;
  std::string_view head = buf.substr(0, end);  // every line ends with LF, the last one empty
  Line first = line_at(head, 0);
  std::string_view status_line = first.text;
  // "HTTP/1.x NNN[ reason]"
  if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1." ||
      (status_line[7] != '0' && status_line[7] != '1') || status_line[8] != ' ' ||
      (status_line.size() > 12 && status_line[12] != ' '))
    return parse_status::invalid;
  int code = 0;
  for (int i = 9; i < 12; ++i) {
    char c = status_line[i];
    if (c < '0' || c > '9') return parse_status::invalid;
    code = code * 10 + (c - '0');
  }
  if (code < 100) return parse_status::invalid;
  status_ = code;

  bool chunked = false;
  bool have_length = false;
  std::size_t length = 0;
  for (Line ln = line_at(head, first.next); !ln.text.empty(); ln = line_at(head, ln.next)) {
    std::string_view line = ln.text;
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return parse_status::invalid;
    std::string_view name = line.substr(0, colon);
    std::string_view value = trim(line.substr(colon + 1));
    if (iequals(name, "content-length")) {
      std::size_t n = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc{} || p != value.data() + value.size() || value.empty()) return parse_status::invalid;
      if (have_length && n != length) return parse_status::invalid;
      have_length = true;
      length = n;
    } else if (iequals(name, "transfer-encoding")) {
      if (!iequals(value, "chunked")) return parse_status::invalid;  // only framing we accept
      chunked = true;
    }
  }
  pos_ = end;
  bool bodyless = (code >= 100 && code < 200) || code == 204 || code == 304;
  if (chunked && have_length) return parse_status::invalid;
  if (bodyless) {
    phase_ = phase::body_length;
    remaining_ = 0;
  } else if (chunked) {
    phase_ = phase::chunk_size;
  } else if (have_length) {
    phase_ = phase::body_length;
    remaining_ = length;
  } else {
    return parse_status::invalid;  // read-until-close framing cannot carry keep-alive load
  }
  return parse_status::partial;
}

parse_status ResponseParser::parse(std::string_view buf) {
  for (;;) {
    switch (phase_) {
      case phase::head: {
        parse_status s = parse_head(buf);
        if (s != parse_status::partial || phase_ == phase::head) return s;
        break;
      }
      case phase::body_length: {
        std::size_t have = buf.size() - pos_;
        if (have < remaining_) return parse_status::partial;
        consumed_ = pos_ + remaining_;
        return parse_status::complete;
      }
      case phase::chunk_size: {
        Line ln = line_at(buf, pos_);
        if (ln.next == std::string_view::npos)
          return buf.size() - pos_ > 1024 ? parse_status::invalid : parse_status::partial;
        std::string_view line = ln.text;
        std::size_t semi = line.find(';');  // chunk extensions are ignored
        std::string_view hex = trim(line.substr(0, semi));
        std::size_t n = 0;
        auto [p, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), n, 16);
        if (hex.empty() || ec != std::errc{} || p != hex.data() + hex.size()) return parse_status::invalid;
        pos_ = ln.next;
        if (n == 0) {
          phase_ = phase::trailers;
        } else {
          remaining_ = n;
          phase_ = phase::chunk_data;
        }
        break;
      }
      case phase::chunk_data: {
        if (buf.size() - pos_ < remaining_) return parse_status::partial;
        pos_ += remaining_;
        phase_ = phase::chunk_data_crlf;
        break;
      }
      case phase::chunk_data_crlf: {  // the line terminator after chunk data: CRLF or a bare LF
        std::string_view rest = buf.substr(pos_, 2);
        if (rest.empty() || rest == "\r") return parse_status::partial;
        std::size_t n = rest == "\r\n" ? 2 : rest[0] == '\n' ? 1 : 0;
        if (n == 0) return parse_status::invalid;
        pos_ += n;
        phase_ = phase::chunk_size;
        break;
      }
      case phase::trailers: {
        Line ln = line_at(buf, pos_);
        if (ln.next == std::string_view::npos)
          return buf.size() - pos_ > kMaxHeaderBytes ? parse_status::invalid : parse_status::partial;
        bool empty = ln.text.empty();
        pos_ = ln.next;
        if (empty) {
          consumed_ = pos_;
          return parse_status::complete;
        }
        break;
      }
    }
  }
}

}  // namespace cb::loadgen
