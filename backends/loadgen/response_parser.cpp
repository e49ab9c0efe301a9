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

}  // namespace

parse_status ResponseParser::parse_head(std::string_view buf) {
  std::size_t end = buf.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    // Reject early what can never become a status line, so garbage is caught at once.
    std::string_view prefix = buf.substr(0, 7);
    if (std::string_view("HTTP/1.").substr(0, prefix.size()) != prefix) return parse_status::invalid;
    return buf.size() > kMaxHeaderBytes ? parse_status::invalid : parse_status::partial;
  }
  if (end + 4 > kMaxHeaderBytes) return parse_status::invalid;
  std::string_view head = buf.substr(0, end + 2);  // every line ends with CRLF
  std::size_t eol = head.find("\r\n");
  std::string_view status_line = head.substr(0, eol);
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
  std::size_t line_start = eol + 2;
  while (line_start < head.size()) {
    std::size_t line_end = head.find("\r\n", line_start);
    std::string_view line = head.substr(line_start, line_end - line_start);
    line_start = line_end + 2;
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
  pos_ = end + 4;
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
        std::size_t eol = buf.find("\r\n", pos_);
        if (eol == std::string_view::npos)
          return buf.size() - pos_ > 1024 ? parse_status::invalid : parse_status::partial;
        std::string_view line = buf.substr(pos_, eol - pos_);
        std::size_t semi = line.find(';');  // chunk extensions are ignored
        std::string_view hex = trim(line.substr(0, semi));
        std::size_t n = 0;
        auto [p, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), n, 16);
        if (hex.empty() || ec != std::errc{} || p != hex.data() + hex.size()) return parse_status::invalid;
        pos_ = eol + 2;
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
      case phase::chunk_data_crlf: {
        if (buf.size() - pos_ < 2) return parse_status::partial;
        if (buf.substr(pos_, 2) != "\r\n") return parse_status::invalid;
        pos_ += 2;
        phase_ = phase::chunk_size;
        break;
      }
      case phase::trailers: {
        std::size_t eol = buf.find("\r\n", pos_);
        if (eol == std::string_view::npos)
          return buf.size() - pos_ > kMaxHeaderBytes ? parse_status::invalid : parse_status::partial;
        bool empty = eol == pos_;
        pos_ = eol + 2;
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
