// Codec microbenchmarks: what the shared HTTP codec costs per request, whatever the model.
//
// BM_Codec_WrkRequest, BM_Codec_BrowserRequest: Codec::feed() on one keep-alive connection's codec
//   (parse with http_parser, route, handle GET /, append the response), for wrk's request and a
//   browser-sized one (~500 bytes, many headers), one request per feed (pipeline:1) or a
//   pipelined batch of 16 in one feed (pipeline:16, as wrk -p16 delivers them). items = requests.
// BM_Codec_Serialize/hello: Codec::serialize() of the workload's hello response, as every model
//   formats it (Date header included; the codec keeps formatted small responses per thread).
// BM_Codec_Serialize/distinct_bodies: the same response with a different body address each call
//   (64 copies of the body), more than a small per-thread cache of formatted responses holds,
//   so each call formats the status line and every header from scratch.
// BM_Codec_DateFormat: formatting the Date header's value (gmtime_r + strftime), which the codec
//   pays once a second per thread; the figure says what its per-second cache saves per request.
//
// Single-threaded and CPU-bound: CPU time, the library's default.
#include <benchmark/benchmark.h>
#include <time.h>

#include <array>
#include <string>
#include <string_view>

#include "backends/http/codec.h"

namespace {

using cb::http::Codec;
using cb::http::FeedResult;
using cb::http::feed_status;

// What wrk sends for `wrk http://127.0.0.1:8080/`.
constexpr std::string_view kWrkRequest = "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";

// A browser's navigation request (Firefox 115's header set), padded to about 500 bytes by its
// cookie: the size of a typical request with headers, to weigh header parsing.
constexpr std::string_view kBrowserRequest =
    "GET / HTTP/1.1\r\n"
    "Host: 127.0.0.1:8080\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Connection: keep-alive\r\n"
    "Cookie: session=6f1c2a9e4b7d3f08; theme=dark; consent=1\r\n"
    "Upgrade-Insecure-Requests: 1\r\n"
    "Sec-Fetch-Dest: document\r\n"
    "Sec-Fetch-Mode: navigate\r\n"
    "Sec-Fetch-Site: none\r\n"
    "Sec-Fetch-User: ?1\r\n"
    "Cache-Control: max-age=0\r\n"
    "\r\n";

// Feeds `pipeline` copies of `request` per iteration to one codec (a keep-alive connection).
// `path`: the codec's fast path (the default) or http_parser alone, to weigh what it saves.
void run_feed(benchmark::State& state, std::string_view request,
              cb::http::ParsePath path = cb::http::ParsePath::fast_path) {
  const auto pipeline = static_cast<std::size_t>(state.range(0));
  std::string input;
  for (std::size_t i = 0; i < pipeline; ++i) input.append(request);
  Codec codec(path);
  std::string out;
  out.reserve(64 * 1024);  // the codec's output high-water mark: never reallocates below it

  // Check once, outside the timed loop, that the codec answers every request and keeps the
  // connection open; otherwise the figure would be the cost of an error path.
  FeedResult first = codec.feed(input, out);
  if (first.responses != pipeline || first.consumed_bytes != input.size() || first.status != feed_status::need_more) {
    state.SkipWithError("the codec did not answer every request of the batch with keep-alive");
    return;
  }
  const std::size_t response_bytes = out.size();

  for (auto _ : state) {
    out.clear();
    FeedResult r = codec.feed(input, out);
    benchmark::DoNotOptimize(r);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * pipeline));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * input.size()));
  state.counters["request_bytes"] = static_cast<double>(request.size());
  state.counters["response_bytes"] = static_cast<double>(response_bytes / pipeline);
}

void BM_Codec_WrkRequest(benchmark::State& state) { run_feed(state, kWrkRequest); }
void BM_Codec_BrowserRequest(benchmark::State& state) { run_feed(state, kBrowserRequest); }
void BM_Codec_WrkRequestHttpParserOnly(benchmark::State& state) {
  run_feed(state, kWrkRequest, cb::http::ParsePath::http_parser_only);
}

// 16: the pipeline depth of the plaintext-pipelined scenario (wrk -p16, as TechEmpower uses).
BENCHMARK(BM_Codec_WrkRequest)->ArgName("pipeline")->Arg(1)->Arg(16);
BENCHMARK(BM_Codec_BrowserRequest)->ArgName("pipeline")->Arg(1)->Arg(16);
BENCHMARK(BM_Codec_WrkRequestHttpParserOnly)->ArgName("pipeline")->Arg(1)->Arg(16);

constexpr std::string_view kHello = "Hello, world!";
constexpr std::size_t kDistinctBodies = 64;  // far more than a per-thread cache of a few entries

// kDistinctBodies copies of the hello body at distinct addresses (static: the codec may key its
// cache on the body's address, which must stay valid).
const std::array<std::array<char, 16>, kDistinctBodies>& distinct_bodies() {
  static const auto bodies = [] {
    std::array<std::array<char, 16>, kDistinctBodies> b{};
    for (auto& body : b) kHello.copy(body.data(), kHello.size());
    return b;
  }();
  return bodies;
}

void BM_Codec_Serialize(benchmark::State& state, bool distinct) {
  std::string out;
  out.reserve(4096);
  const auto& bodies = distinct_bodies();
  std::size_t next = 0;
  std::size_t bytes = 0;
  for (auto _ : state) {
    out.clear();
    cb::http::Response resp;
    resp.body = distinct ? std::string_view(bodies[next++ % kDistinctBodies].data(), kHello.size()) : kHello;
    Codec::serialize(resp, /*keep_alive=*/true, /*http10_keep_alive=*/false, /*head_only=*/false, out);
    bytes += out.size();
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
}
BENCHMARK_CAPTURE(BM_Codec_Serialize, hello, false);
BENCHMARK_CAPTURE(BM_Codec_Serialize, distinct_bodies, true);

void BM_Codec_DateFormat(benchmark::State& state) {
  char text[40];
  for (auto _ : state) {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    tm parts{};
    gmtime_r(&ts.tv_sec, &parts);
    std::size_t len = strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &parts);
    benchmark::DoNotOptimize(len);
    benchmark::DoNotOptimize(text);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_Codec_DateFormat);

}  // namespace

BENCHMARK_MAIN();
