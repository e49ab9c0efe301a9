// The I/O half of a connection for non-blocking models: reads into the calling thread's scratch
// buffer, feeds the shared codec, writes the responses, and keeps only what could not be handled
// at once. Models decide *when* to call it (on readiness, from a queue, on a worker); this class
// decides nothing about concurrency.
#pragma once
#include <cstdint>
#include <string>

#include "backends/http/codec.h"
#include "backends/http/limits.h"

namespace cb::net {

// What the connection waits for next.
enum class want : std::uint8_t { read, write, close };

// Per-thread buffers. One per thread that runs sessions, never per connection, so an idle
// connection holds no read buffer (the idle-memory bar).
struct IoScratch {
  char read_buf[http::kReadBufferBytes];
  std::string out;
};

class NbSession {
 public:
  explicit NbSession(int fd) : fd_(fd) {}

  // Reads (at most kMaxReadsPerEvent times), answers every complete request and writes the
  // answers. Returns want::write when output is pending (reading stops until it drains: a
  // client that does not read cannot make the server buffer without bound), want::close on EOF,
  // error or a closing response fully written, else want::read.
  want on_readable(IoScratch& scratch);

  // Writes pending output, then parses input held back by the output high-water mark.
  // Returns as on_readable.
  want on_writable(IoScratch& scratch);

  int fd() const { return fd_; }

  // True (once) if requests completed since the last call: models renew idle deadlines on it.
  bool take_progress() {
    bool p = progress_;
    progress_ = false;
    return p;
  }

  // Bytes held for this connection beyond sizeof(NbSession) (capacity of the pending buffers).
  std::size_t held_bytes() const { return out_pending_.capacity() + in_backlog_.capacity(); }

 private:
  want process(std::string_view input, IoScratch& scratch);
  want send_output(IoScratch& scratch);  // scratch.out: want::read if all sent, write if some is pending
  want after_flush(IoScratch& scratch);

  int fd_;
  http::Codec codec_;
  std::string out_pending_;  // unwritten response bytes (empty unless the socket was full)
  std::size_t out_offset_ = 0;  // bytes of out_pending_ already written
  std::string in_backlog_;   // unparsed input held back by the output high-water mark (<= one read)
  bool progress_ = false;
};

// Serves one connection on a blocking socket until the peer closes, an error, or a closing
// response. `idle_timeout_ms` bounds the time without a completed request (enforced with
// SO_RCVTIMEO, so a silent client is dropped within one timeout and a slow one within two; a
// client that stops reading is dropped by SO_SNDTIMEO within one timeout per blocked send).
// To stop it from another thread, shutdown(fd, SHUT_RDWR). Returns the number of responses written.
std::uint64_t serve_blocking(int fd, int idle_timeout_ms, IoScratch& scratch);

}  // namespace cb::net
