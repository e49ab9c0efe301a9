// The I/O half of a connection for blocking models (thread-per-connection, blocking-pool): one
// thread reads, pumps (http::Pump, the same buffering as every other model) and writes with
// blocking calls until the connection ends.
#pragma once
#include <cstdint>

#include "backends/http/pump.h"

namespace cb::net {

// Serves one connection on a blocking socket until the peer closes, an error, or a closing
// response. `idle_timeout_ms` bounds the time without a completed request (enforced with
// SO_RCVTIMEO, so a silent client is dropped within one timeout and a slow one within two; a
// client that stops reading is dropped by SO_SNDTIMEO within one timeout per blocked send).
// To stop it from another thread, shutdown(fd, SHUT_RDWR). Returns the number of responses written.
std::uint64_t serve_blocking(int fd, int idle_timeout_ms, http::PumpScratch& scratch);

}  // namespace cb::net
