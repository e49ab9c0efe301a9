// --response published (codec.h ResponseStyle): a keep-alive 200 is exactly the Ruby examples'
// 49 bytes; everything else keeps the standard headers; standard is untouched.
#include <gtest/gtest.h>

#include <string>

#include "backends/http/codec.h"

using cb::http::Codec;
using cb::http::ResponseStyle;

namespace {

struct StyleGuard {
  ~StyleGuard() { cb::http::set_response_style(ResponseStyle::standard); }
};

std::string feed_all(const std::string& in) {
  Codec codec;
  std::string out;
  codec.feed(in, out);
  return out;
}

TEST(ResponseStyle, PublishedIsTheRubyExamplesBytes) {
  StyleGuard guard;
  cb::http::set_response_style(ResponseStyle::published);
  const std::string expected = "HTTP/1.1 200 OK\nContent-Length: 13\n\nHello, world!";
  ASSERT_EQ(expected.size(), 49u);
  EXPECT_EQ(feed_all("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), expected);
  EXPECT_EQ(feed_all("GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"), expected + expected);
}

TEST(ResponseStyle, PublishedLeavesErrorsClosesAndHttp10Standard) {
  StyleGuard guard;
  cb::http::set_response_style(ResponseStyle::published);
  struct Case {
    const char* label;
    const char* request;
    const char* starts_with;
  } cases[] = {
      {"404", "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 404 Not Found\r\n"},
      {"Connection: close", "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "HTTP/1.1 200 OK\r\nServer:"},
      {"HTTP/1.0", "GET / HTTP/1.0\r\n\r\n", "HTTP/1.1 200 OK\r\nServer:"},
  };
  for (const auto& c : cases) {
    std::string out = feed_all(c.request);
    EXPECT_EQ(out.rfind(c.starts_with, 0), 0u) << c.label << ": " << out;
  }
}

TEST(ResponseStyle, StandardKeepsServerAndDate) {
  std::string out = feed_all("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(out.rfind("HTTP/1.1 200 OK\r\nServer: cbench\r\nDate: ", 0), 0u) << out;
  EXPECT_NE(out.find("\r\n\r\nHello, world!"), std::string::npos) << out;
}

}  // namespace
