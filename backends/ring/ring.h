// One io_uring per thread, over liburing: set-up with feature probing, the provided-buffer ring
// that receives land in, and the counters of what crossed the ring. Knows nothing about HTTP or
// connections; servers/io_uring.cpp and servers/floor_uring.cpp build their loops on it.
#pragma once
#include <liburing.h>

#include <chrono>
#include <cstdint>
#include <string>

#include "backends/stats/counters.h"

namespace cb::uring {

// Checks, once, what every io_uring loop here needs: a ring can be set up (io_uring_setup is not
// refused by io_uring_disabled or a seccomp filter), the kernel has IORING_FEAT_EXT_ARG (a wait
// with a timeout in the same io_uring_enter, 5.11) and provided-buffer rings
// (IORING_REGISTER_PBUF_RING, 5.19). Returns "" if all are there, else one line naming what is
// missing and why (ModelSpec::probe). Multishot accept is not required: see Ring::multishot_accept.
std::string probe();

// Checks, once, what the multishot receive mode (io-uring --uring-recv multishot) needs on top of
// probe(): IORING_OP_RECV (io_uring_get_probe_ring) taking IORING_RECV_MULTISHOT with buffer
// select (Linux 6.0). io_uring's probe lists opcodes, not flags, so it arms one on a socketpair
// and sends a byte: a kernel without the flag answers -EINVAL, or a single-shot completion (no
// IORING_CQE_F_MORE). Returns "" or one line naming what is missing. Counts nothing.
std::string probe_recv_multishot();

// Checks, once, what a batched wait (Ring::submit_and_wait with a min_wait, io-uring
// --uring-min-wait-us) needs on top of probe(): IORING_FEAT_MIN_TIMEOUT (Linux 6.13), the wait
// that asks for several CQEs but settles for one after min_wait. Returns "" or one line naming
// what is missing.
std::string probe_min_wait();

// A thread's ring. Not thread-safe: one thread submits and reaps. Counts, in the shared counters
// (backends/stats/counters.h), sq_submissions (SQEs the kernel took), cq_completions (CQEs
// reaped) and ring_enters (io_uring_enter calls this class made).
class Ring {
 public:
  Ring() = default;
  ~Ring();
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  // Sets up a ring with `entries` SQEs (CQ twice that). Tries IORING_SETUP_SINGLE_ISSUER |
  // IORING_SETUP_DEFER_TASKRUN (completions run only when the owning thread enters the ring, so
  // they are batched into its one wait per round), then plain flags. Never SQPOLL. The ring starts
  // disabled (IORING_SETUP_R_DISABLED), so that it can be made on one thread and owned by another:
  // the thread that calls enable() is its only submitter. Returns "" or the reason it failed.
  std::string init(unsigned entries);

  // Enables the ring for the calling thread (io_uring_enable_rings). Returns "" or the reason.
  std::string enable();

  // A free SQE; if the SQ is full, submits what is queued first (counted). Never null once init
  // succeeded (the SQ is empty after a submit).
  io_uring_sqe* sqe();

  // Makes room for n SQEs (n <= the SQ size), submitting what is queued if fewer are free (counted
  // as sqe() does), so that the next n sqe() calls go into one submission (a link).
  void reserve(unsigned n);

  // Submits the queued SQEs and waits for at least one CQE or the timeout, in one io_uring_enter.
  // Returns the number of SQEs submitted or a negative errno (-ETIME on timeout is not an error).
  // No system call when nothing is queued and a CQE is already waiting.
  //
  // Batched wait (min_wait > 0 and want > 1; needs probe_min_wait()): the kernel waits up to
  // min_wait for `want` CQEs, then returns as soon as it has one (IORING_FEAT_MIN_TIMEOUT, the
  // getevents argument's min_wait_usec). A round then reaps several completions for one enter at
  // the price of up to min_wait of added latency per response: the trade is the caller's.
  int submit_and_wait(std::chrono::milliseconds timeout, unsigned want = 1,
                      std::chrono::microseconds min_wait = std::chrono::microseconds(0));

  // Calls fn(cqe) for every CQE ready now, then marks them seen. fn must not call submit_and_wait.
  template <class Fn>
  unsigned for_each_cqe(Fn&& fn) {
    unsigned head, n = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      fn(cqe);
      ++n;
    }
    io_uring_cq_advance(&ring_, n);
    if (n > 0) stats::count(stats::Counter::cq_completions, n);
    return n;
  }

  // Whether IORING_ACCEPT_MULTISHOT is offered (5.19). Set false by the loop when the kernel
  // answers a multishot accept with -EINVAL: the stated fallback is one accept SQE per
  // connection, re-armed on each completion.
  bool multishot_accept = true;

  io_uring* raw() { return &ring_; }

 private:
  // Makes the queued SQEs visible to the kernel (liburing 2.3 keeps its own flush private) and
  // returns how many it has not consumed yet. Not for SQPOLL rings (never set up here).
  unsigned flush_sq();
  // submit_and_wait's batched path: one raw io_uring_enter with min_wait_usec set.
  int enter_batched(std::chrono::milliseconds timeout, unsigned want, std::chrono::microseconds min_wait);

  io_uring ring_{};
  bool ready_ = false;
};

// A provided-buffer ring (buffer group `group_id`): `count` buffers of `buffer_bytes` each, in
// memory this class maps. Receives with IOSQE_BUFFER_SELECT take a buffer only when data arrives,
// so a connection waiting for a request holds none. liburing 2.3 has no io_uring_setup_buf_ring,
// so the ring memory is mapped here and registered with io_uring_register_buf_ring.
class BufferRing {
 public:
  BufferRing() = default;
  ~BufferRing();
  BufferRing(const BufferRing&) = delete;
  BufferRing& operator=(const BufferRing&) = delete;

  // count must be a power of two. Returns "" or the reason.
  std::string init(Ring& ring, std::uint16_t group_id, unsigned count, unsigned buffer_bytes);

  std::uint16_t group_id() const { return group_id_; }
  unsigned buffer_bytes() const { return buffer_bytes_; }
  char* buffer(unsigned id) { return data_ + static_cast<std::size_t>(id) * buffer_bytes_; }

  // Gives buffer `id` back to the kernel; visible to it at once (one release store per call).
  void recycle(unsigned id);

 private:
  Ring* ring_ = nullptr;
  io_uring_buf_ring* br_ = nullptr;
  std::size_t br_bytes_ = 0;
  char* data_ = nullptr;
  std::size_t data_bytes_ = 0;
  unsigned count_ = 0;
  unsigned buffer_bytes_ = 0;
  std::uint16_t group_id_ = 0;
};

}  // namespace cb::uring
