// Limits of the shared HTTP workload. Every model enforces them through the one codec, so a
// limit can never make one model look faster than another.
#pragma once
#include <cstddef>
#include <cstdint>

namespace cb::http {

// Request line target. 8 KiB is the common server default (nginx large_client_header_buffers,
// Apache LimitRequestLine) and far above anything the benchmark paths use. Over it: 414.
inline constexpr std::size_t kMaxUriBytes = 8 * 1024;

// Header fields (names, values and their ": " and CRLF), not counting the request line.
// 8 KiB as above; over it: 431.
inline constexpr std::size_t kMaxHeaderBytes = 8 * 1024;

// Request bodies. The workload never needs one; 1 MiB lets tests exercise body framing while
// bounding what a client can make us read. Content-Length over it is refused before reading: 413.
inline constexpr std::uint64_t kMaxBodyBytes = 1024 * 1024;

// The codec stops parsing further pipelined requests once this many response bytes are waiting
// to be written. It bounds what a client that pipelines without reading can make the server
// hold: one high-water mark plus one response. 64 KiB is about one loopback socket buffer.
inline constexpr std::size_t kOutputHighWaterBytes = 64 * 1024;

// Read size for one read(2). 16 KiB is what Ever's example server reads (read_nonblock(16384)),
// and holds ~900 minimal pipelined requests.
inline constexpr std::size_t kReadBufferBytes = 16 * 1024;

// Non-blocking models read at most this many times per readiness event before yielding to other
// connections, so one busy client cannot starve the loop (libuv uses 32 for the same reason).
inline constexpr int kMaxReadsPerEvent = 32;

// Route parameter caps. Each is far above what the scenarios use and small enough that one
// request cannot hold a thread or memory for long.
inline constexpr std::uint64_t kMaxSpinUs = 1'000'000;         // /spin?us=N: at most 1 s of CPU
inline constexpr std::uint64_t kMaxSleepMs = 10'000;           // /sleep?ms=N: under the 30 s idle timeout
inline constexpr std::uint64_t kMaxBytesBody = 4 * 1024 * 1024;  // /bytes?n=N: larger than socket buffers,
                                                                 // so partial writes happen, yet bounded

}  // namespace cb::http
