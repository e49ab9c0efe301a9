// cbench-pump-drive: a deterministic driver for callgrind's instruction counts. It serves one
// socketpair connection with net::NbSession (the readiness models' step: read into the thread's
// scratch, pump and codec, send) and feeds it BATCHES batches of 16 wrk-style pipelined requests
// (the bytes wrk's pipeline script sends at -p16), draining the responses after each batch.
//   valgrind --tool=callgrind ./cbench-pump-drive 20000
// Instructions per request = total Ir / (16 x BATCHES); the client side (write and drain) is part
// of the count and is the same before and after a change to the pump. Not a benchmark (no
// timing); it exits 1 if a response goes missing.
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "backends/net/nb_session.h"
#include "backends/net/socket.h"

int main(int argc, char** argv) {
  const long batches = argc > 1 ? std::atol(argv[1]) : 20000;
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return 2;
  cb::net::set_nonblocking(fds[0]);
  auto scratch = std::make_unique<cb::net::IoScratch>();
  cb::net::NbSession session(fds[0]);
  const std::string request = "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";
  std::string batch;
  for (int i = 0; i < 16; ++i) batch += request;
  static char sink[64 * 1024];
  std::size_t expected = 0, got = 0;
  for (long b = 0; b < batches; ++b) {
    if (write(fds[1], batch.data(), batch.size()) != static_cast<ssize_t>(batch.size())) return 2;
    if (session.on_readable(*scratch) != cb::net::want::read) return 1;
    ssize_t n = read(fds[1], sink, sizeof sink);
    if (n <= 0) return 1;
    if (b == 0) expected = static_cast<std::size_t>(n);
    got += static_cast<std::size_t>(n);
  }
  // Every batch's answer has the same length (the Date is fixed-width).
  if (got != expected * static_cast<std::size_t>(batches)) return 1;
  std::printf("%ld batches, %ld requests, %zu response bytes\n", batches, batches * 16, got);
  return 0;
}
