// http::Pump: the one implementation of "bytes in, responses out" around the shared codec. Every
// model that speaks HTTP drives a Pump; none calls Codec::feed itself, so the buffering (how much
// input is held back, where responses are staged, when a buffer is released) is the same in every
// row of a table and two rows differ only where their model files differ.
//
// The pump does no I/O. The caller reads bytes (from its own buffer, the thread's scratch, or a
// buffer the kernel filled) and hands them to feed(); it writes output() however its model writes
// (send, uv_try_write, async_write, an io_uring SQE) and reports what went out with consumed().
//
// Contract, one connection:
//   state() == read   no output pending, nothing held back: read more and feed() it.
//   state() == write  output() is non-empty: write it, then consumed(n) with the bytes written.
//                     Do not feed() until the state is read again (backpressure: a client that
//                     does not read stops being read from).
//   state() == close  a closing response (an error, "Connection: close", HTTP/1.0 without
//                     keep-alive) has been fully written: close the connection.
//
// Input side. feed(bytes) borrows `bytes` for the call only: the caller may reuse its buffer as
// soon as feed() returns (a kernel-provided buffer can be returned to the kernel at once).
// Requests split across feeds are kept inside the codec, never re-fed. When the staged output
// reaches kOutputHighWaterBytes, parsing stops and only the unparsed tail is copied into the
// pump's own backlog; consumed() parses the backlog once the output has drained. The backlog is
// bounded by one feed: feed() is refused (precondition) while output or backlog is pending, so a
// connection holds at most one feed's worth of input (kReadBufferBytes for the models' reads)
// plus the output high-water mark plus one response.
//
// Output side. output() is a view of the pump's current output buffer; it stays valid and
// unchanged until the next consumed() or feed() call (a write in flight, uv_write or
// async_write, may point into it until its completion calls consumed()). consumed(n) with
// n < output().size() is a partial write: the rest stays pending and output() then starts at the
// first unwritten byte. When the output drains, an own buffer grown past kOutputHighWaterBytes
// (a large /bytes body) is released, a smaller one kept for the next feed; a borrowed one goes
// back to the thread whole (lend_back), as the thread's scratch always kept its size. The backlog
// is reserved at kReadBufferBytes the first time the high-water mark stops a feed and kept for
// the connection's life (a client that pipelines past the mark once is likely to again, and
// steady state then allocates nothing); a connection that never reaches the mark holds none.
//
// Where the output is staged (who owns the buffer between turns):
//   - feed(bytes, staging): the readiness models' form. `staging` is the calling thread's buffer
//     (PumpScratch::out). The pump borrows it when it has no output buffer of its own, and
//     lend_back(staging) at the end of the turn returns it if everything was written, so an idle
//     connection holds no output buffer and every connection of a thread shares one. If output is
//     still pending (the socket was full) the pump keeps the buffer until it drains, and the
//     thread's next feed on another connection grows a new one (an allocation only on
//     backpressure). Forgetting lend_back is safe, merely costs memory.
//   - feed(bytes): the pump's own buffer, kept (up to the high-water mark) for the connection's
//     life. For models whose writes complete later on another stack (libuv's uv_write, Asio).
//
// Not thread-safe: one thread at a time drives a Pump (a model may hand it between threads with
// the usual happens-before of a queue or a strand). Allocates nothing per request once its
// buffers have their capacity.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "backends/http/codec.h"
#include "backends/http/limits.h"

namespace cb::http {

// What the connection waits for next (see the contract above).
enum class pump_state : std::uint8_t { read, write, close };

// Per-thread buffers of a readiness model: one per thread that runs connections, never one per
// connection, so an idle connection holds neither a read buffer nor an output buffer.
struct PumpScratch {
  char read_buf[kReadBufferBytes];  // what the model reads into and passes to feed()
  std::string out;                  // response staging, lent to one pump at a time
};

class Pump {
 public:
  Pump() = default;
  Pump(Pump&&) noexcept = default;
  Pump& operator=(Pump&&) noexcept = default;

  // Parses `bytes` and stages the responses (see "Input side"). Precondition: state() == read.
  // Returns state(). Borrows `staging` (the thread's) if the pump has no buffer of its own.
  pump_state feed(std::string_view bytes, std::string& staging);
  pump_state feed(std::string_view bytes);

  // Bytes waiting to be written, from the first unwritten one. Valid until consumed() or feed().
  std::string_view output() const { return {out_.data() + out_offset_, out_.size() - out_offset_}; }

  // Records that the first n bytes of output() were written (n <= output().size()). When the
  // output drains, parses input held back by the high-water mark (more output may appear).
  // Returns state().
  pump_state consumed(std::size_t n);

  // Ends a turn of the readiness form: gives the thread's staging buffer back unless output is
  // still pending. Cheap; call it before the thread serves another connection.
  void lend_back(std::string& staging);

  pump_state state() const {
    if (out_offset_ < out_.size()) return pump_state::write;
    return codec_.closing() ? pump_state::close : pump_state::read;
  }

  // True if state() will be read once output() has all been consumed: no input held back by the
  // high-water mark and no closing response (a completion model may then queue its next read
  // behind the write).
  bool reads_after_output() const { return backlog_.empty() && !codec_.closing(); }

  // True (once) if requests completed since the last call: models renew idle deadlines on it.
  bool take_progress() {
    bool p = progress_;
    progress_ = false;
    return p;
  }

  // True if part of a request has been received (idle timeouts, EOF).
  bool mid_request() const { return codec_.mid_request(); }

  // Responses produced since construction.
  std::uint64_t responses_total() const { return codec_.responses_total(); }

  // Debugging and the conformance suite (cbench-server --trace-writes): when on, every
  // consumed(n) prints "cbench-server: pump write N" to stderr, so a test can see the write sizes
  // a model produced without strace. Set before any connection is served; off by default.
  static void trace_writes(bool on) { trace_writes_ = on; }

  // Heap bytes this connection holds beyond sizeof(Pump): buffer capacities.
  std::size_t held_bytes() const { return heap_bytes(out_) + heap_bytes(backlog_); }

 private:
  static std::size_t heap_bytes(const std::string& s) {
    return s.capacity() > std::string().capacity() ? s.capacity() : 0;
  }
  void parse(std::string_view bytes);  // into out_; the unparsed tail goes to backlog_
  void drained();                      // out_ fully written: reset, release or parse the backlog
  static void trace_write(std::size_t n);
  static inline bool trace_writes_ = false;

  Codec codec_;
  std::string out_;             // staged responses (borrowed or own); [out_offset_, size) unwritten
  std::size_t out_offset_ = 0;  // bytes of out_ already written
  std::string backlog_;         // input held back by the output high-water mark (<= one feed)
  bool progress_ = false;
  bool lending_ = false;        // fed with a staging buffer: out_ goes back to the thread
};

}  // namespace cb::http
