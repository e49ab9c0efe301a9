// The I/O half of a connection for non-blocking readiness models: reads into the calling thread's
// scratch buffer, hands the bytes to the connection's http::Pump and sends what it stages. The
// buffering (backlog, output staging, high-water marks, releases) is the pump's (pump.h); this
// class adds only the system calls. Models decide *when* to call it (on readiness, from a queue,
// on a worker); it decides nothing about concurrency.
#pragma once
#include <cstdint>
#include <string>

#include "backends/http/limits.h"
#include "backends/http/pump.h"
#include "backends/net/blocking_region.h"

namespace cb::net {

// What the connection waits for next.
enum class want : std::uint8_t { read, write, close };

// Per-thread buffers (read buffer and response staging), never one per connection, so an idle
// connection holds no read buffer and no output buffer (the idle-memory bar).
using IoScratch = http::PumpScratch;

class NbSession {
 public:
  explicit NbSession(int fd) : fd_(fd) {}

  // Reads (at most kMaxReadsPerEvent times), answers every complete request and writes the
  // answers. Returns want::write when output is pending (reading stops until it drains: a
  // client that does not read cannot make the server buffer without bound), want::close on EOF,
  // error or a closing response fully written, else want::read. `around`, if given, brackets
  // every read and send (blocking_region.h); parsing and answering run outside it.
  want on_readable(IoScratch& scratch, BlockingRegion* around = nullptr);

  // Writes pending output (and whatever the pump parses from its backlog once it drains).
  // Returns as on_readable.
  want on_writable(IoScratch& scratch, BlockingRegion* around = nullptr);

  int fd() const { return fd_; }

  // True (once) if requests completed since the last call: models renew idle deadlines on it.
  bool take_progress() { return pump_.take_progress(); }

  // Bytes held for this connection beyond sizeof(NbSession) (capacity of the pump's buffers).
  std::size_t held_bytes() const { return pump_.held_bytes(); }

 private:
  want flush(IoScratch& scratch, BlockingRegion* around);  // sends output() until drained or the socket is full

  int fd_;
  http::Pump pump_;
};

}  // namespace cb::net
