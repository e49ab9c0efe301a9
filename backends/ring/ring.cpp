#include "backends/ring/ring.h"

#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>

namespace cb::uring {

namespace {

std::string errno_text(int err) { return std::strerror(err < 0 ? -err : err); }

// IORING_FEAT_MIN_TIMEOUT (Linux 6.13); liburing 2.3's headers predate it. With it, the getevents
// argument's `pad` field is min_wait_usec.
constexpr unsigned kFeatMinTimeout = 1U << 15;

// A wait's timeout as the kernel reads it (milliseconds to seconds and nanoseconds).
__kernel_timespec kernel_timespec(std::chrono::milliseconds timeout) {
  __kernel_timespec ts{};
  ts.tv_sec = timeout.count() / 1000;
  ts.tv_nsec = (timeout.count() % 1000) * 1'000'000;
  return ts;
}

}  // namespace

std::string probe() {
  Ring ring;  // declared before the buffer ring, so destroyed after it
  std::string err = ring.init(4);
  if (err.empty()) err = ring.enable();
  if (!err.empty()) {
    if (err.find("Operation not permitted") != std::string::npos || err.find("not implemented") != std::string::npos)
      err += " (io_uring refused by this kernel: see /proc/sys/kernel/io_uring_disabled, or a seccomp filter)";
    return err;
  }
  if ((ring.raw()->features & IORING_FEAT_EXT_ARG) == 0)
    return "IORING_FEAT_EXT_ARG (a timed wait in one io_uring_enter, Linux 5.11) is missing";
  BufferRing br;
  return br.init(ring, 0, 1, 64);
}

std::string probe_recv_multishot() {
  Ring ring;  // declared before the buffer ring, so destroyed after it
  std::string err = ring.init(4);
  if (err.empty()) err = ring.enable();
  if (!err.empty()) return err;
  io_uring_probe* ops = io_uring_get_probe_ring(ring.raw());
  const bool has_recv = ops != nullptr && io_uring_opcode_supported(ops, IORING_OP_RECV);
  if (ops != nullptr) io_uring_free_probe(ops);
  if (!has_recv) return "IORING_OP_RECV (Linux 5.6) is missing";
  BufferRing br;
  err = br.init(ring, 0, 2, 64);
  if (!err.empty()) return err;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return "socketpair failed: " + errno_text(errno);
  io_uring_sqe* s = io_uring_get_sqe(ring.raw());
  io_uring_prep_recv_multishot(s, sv[0], nullptr, 0, 0);
  s->flags |= IOSQE_BUFFER_SELECT;
  s->buf_group = 0;
  io_uring_sqe_set_data64(s, 1);
  const char byte = 'x';
  const ssize_t wrote = ::write(sv[1], &byte, 1);
  __kernel_timespec ts{};
  ts.tv_sec = 2;  // the byte is already there: the completion is immediate on any kernel
  io_uring_cqe* cqe = nullptr;
  const int rc = io_uring_submit_and_wait_timeout(ring.raw(), &cqe, 1, &ts, nullptr);
  std::string missing;
  if (wrote != 1) missing = "write to a socketpair failed";
  else if (rc < 0 || cqe == nullptr) missing = "a multishot receive did not complete: " + errno_text(rc);
  else if (cqe->res == -EINVAL)
    missing = "IORING_RECV_MULTISHOT (multishot receive, Linux 6.0) is missing: the kernel refused it with EINVAL";
  else if (cqe->res < 0) missing = "a multishot receive failed: " + errno_text(cqe->res);
  else if ((cqe->flags & IORING_CQE_F_MORE) == 0)
    missing = "IORING_RECV_MULTISHOT (multishot receive, Linux 6.0) is missing: the kernel completed it as a single receive";
  ::close(sv[0]);
  ::close(sv[1]);
  return missing;  // the receive still armed is cancelled when the ring is torn down
}

std::string probe_min_wait() {
  Ring ring;
  std::string err = ring.init(4);
  if (!err.empty()) return err;
  if ((ring.raw()->features & kFeatMinTimeout) == 0)
    return "IORING_FEAT_MIN_TIMEOUT (a wait for several completions that settles for one after a minimum time, "
           "Linux 6.13) is missing";
  return "";
}

Ring::~Ring() {
  if (ready_) io_uring_queue_exit(&ring_);
}

std::string Ring::init(unsigned entries) {
  io_uring_params p{};
  p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_R_DISABLED | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  p.cq_entries = entries * 2;  // room for a round's completions plus multishot accepts
  int rc = io_uring_queue_init_params(entries, &ring_, &p);
  if (rc == -EINVAL) {  // a kernel before 6.1: no DEFER_TASKRUN; plain flags work the same, later
    p = io_uring_params{};
    p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_R_DISABLED;
    p.cq_entries = entries * 2;
    rc = io_uring_queue_init_params(entries, &ring_, &p);
  }
  if (rc < 0) return "io_uring_setup failed: " + errno_text(rc);
  ready_ = true;
  return "";
}

std::string Ring::enable() {
  // liburing 2.3 declares io_uring_enable_rings but does not export it: the register call itself.
  long rc = syscall(__NR_io_uring_register, ring_.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0);
  return rc < 0 ? "io_uring_register(IORING_REGISTER_ENABLE_RINGS) failed: " + errno_text(errno) : "";
}

io_uring_sqe* Ring::sqe() {
  io_uring_sqe* s = io_uring_get_sqe(&ring_);
  if (s != nullptr) return s;
  int n = io_uring_submit(&ring_);
  stats::count(stats::Counter::ring_enters);
  if (n > 0) stats::count(stats::Counter::sq_submissions, static_cast<std::uint64_t>(n));
  return io_uring_get_sqe(&ring_);
}

void Ring::reserve(unsigned n) {
  if (io_uring_sq_space_left(&ring_) >= n) return;
  int submitted = io_uring_submit(&ring_);
  stats::count(stats::Counter::ring_enters);
  if (submitted > 0) stats::count(stats::Counter::sq_submissions, static_cast<std::uint64_t>(submitted));
}

int Ring::submit_and_wait(std::chrono::milliseconds timeout, unsigned want, std::chrono::microseconds min_wait) {
  if (want > 1 && min_wait.count() > 0) return enter_batched(timeout, want, min_wait);
  // liburing enters the kernel only when it has SQEs to submit or no CQE is ready yet; count
  // the system call the same way.
  const bool enters = io_uring_sq_ready(&ring_) > 0 || io_uring_cq_ready(&ring_) == 0;
  __kernel_timespec ts = kernel_timespec(timeout);
  io_uring_cqe* cqe = nullptr;
  const unsigned queued = io_uring_sq_ready(&ring_);
  int rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
  if (enters) stats::count(stats::Counter::ring_enters);
  // On -ETIME the SQEs were still submitted (the timeout applies to the wait only).
  const std::uint64_t submitted = rc >= 0 ? static_cast<std::uint64_t>(rc) : queued - io_uring_sq_ready(&ring_);
  if (submitted > 0) stats::count(stats::Counter::sq_submissions, submitted);
  return rc;
}

unsigned Ring::flush_sq() {
  io_uring_sq* sq = &ring_.sq;
  const unsigned tail = sq->sqe_tail;
  if (sq->sqe_head != tail) {
    sq->sqe_head = tail;
    io_uring_smp_store_release(sq->ktail, tail);  // the SQEs' contents before the tail
  }
  return tail - *sq->khead;
}

int Ring::enter_batched(std::chrono::milliseconds timeout, unsigned want, std::chrono::microseconds min_wait) {
  const unsigned queued = flush_sq();
  if (queued == 0 && io_uring_cq_ready(&ring_) > 0) return 0;  // as liburing: no enter
  __kernel_timespec ts = kernel_timespec(timeout);
  io_uring_getevents_arg arg{};
  arg.sigmask_sz = _NSIG / 8;
  arg.pad = static_cast<std::uint32_t>(min_wait.count());  // min_wait_usec
  arg.ts = reinterpret_cast<std::uint64_t>(&ts);
  const unsigned cq_room = *ring_.cq.kring_entries;
  const long rc = syscall(__NR_io_uring_enter, ring_.ring_fd, queued, std::min(want, cq_room),
                          IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &arg, sizeof arg);
  stats::count(stats::Counter::ring_enters);
  const int result = rc < 0 ? -errno : static_cast<int>(rc);
  // The kernel consumed what it submitted (a timed-out wait still submitted).
  const std::uint64_t submitted = queued - io_uring_sq_ready(&ring_);
  if (submitted > 0) stats::count(stats::Counter::sq_submissions, submitted);
  return result;
}

BufferRing::~BufferRing() {
  if (br_ != nullptr) {
    io_uring_unregister_buf_ring(ring_->raw(), group_id_);
    munmap(br_, br_bytes_);
  }
  if (data_ != nullptr) munmap(data_, data_bytes_);
}

std::string BufferRing::init(Ring& ring, std::uint16_t group_id, unsigned count, unsigned buffer_bytes) {
  ring_ = &ring;
  group_id_ = group_id;
  count_ = count;
  buffer_bytes_ = buffer_bytes;
  br_bytes_ = sizeof(io_uring_buf) * count;
  void* m = mmap(nullptr, br_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (m == MAP_FAILED) return "mmap of a buffer ring failed: " + errno_text(errno);
  br_ = static_cast<io_uring_buf_ring*>(m);
  io_uring_buf_ring_init(br_);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<std::uint64_t>(br_);
  reg.ring_entries = count;
  reg.bgid = group_id;
  int rc = io_uring_register_buf_ring(ring.raw(), &reg, 0);
  if (rc < 0) {
    munmap(br_, br_bytes_);
    br_ = nullptr;
    return "provided-buffer rings (IORING_REGISTER_PBUF_RING, Linux 5.19) unavailable: "
           "io_uring_register_buf_ring failed: " + errno_text(rc);
  }
  // The buffers themselves: separate pages, touched only when the kernel fills one.
  data_bytes_ = static_cast<std::size_t>(count) * buffer_bytes;
  m = mmap(nullptr, data_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (m == MAP_FAILED) return "mmap of receive buffers failed: " + errno_text(errno);
  data_ = static_cast<char*>(m);
  const int mask = io_uring_buf_ring_mask(count);
  for (unsigned i = 0; i < count; ++i) io_uring_buf_ring_add(br_, buffer(i), buffer_bytes, static_cast<unsigned short>(i), mask, static_cast<int>(i));
  io_uring_buf_ring_advance(br_, static_cast<int>(count));
  return "";
}

void BufferRing::recycle(unsigned id) {
  io_uring_buf_ring_add(br_, buffer(id), buffer_bytes_, static_cast<unsigned short>(id), io_uring_buf_ring_mask(count_), 0);
  io_uring_buf_ring_advance(br_, 1);
}

}  // namespace cb::uring
