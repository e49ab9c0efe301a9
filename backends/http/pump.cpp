#include "backends/http/pump.h"

namespace cb::http {

// A std::string's capacity without a heap buffer (its small-string buffer).
static const std::size_t kNoHeapCapacity = std::string().capacity();

pump_state Pump::feed(std::string_view bytes, std::string& staging) {
  // Borrow the thread's buffer (clear() below keeps its capacity) unless ours is at least as big.
  if (out_.capacity() < staging.capacity()) out_.swap(staging);
  lending_ = true;
  return feed(bytes);
}

pump_state Pump::feed(std::string_view bytes) {
  // Precondition state() == read: out_ holds nothing unwritten, backlog_ is empty.
  out_.clear();
  out_offset_ = 0;
  parse(bytes);
  return state();
}

void Pump::parse(std::string_view bytes) {
  FeedResult r = codec_.feed(bytes, out_);
  if (r.responses > 0) progress_ = true;
  if (r.status != feed_status::output_full) {
    backlog_.clear();
    return;
  }
  // Keep only the unparsed tail. On the first stop the backlog is reserved at one read so that
  // the copies below never reallocate in between.
  std::string_view rest = bytes.substr(r.consumed_bytes);
  if (bytes.data() == backlog_.data()) {
    backlog_.erase(0, r.consumed_bytes);  // parsing the backlog itself: shift in place
    return;
  }
  if (backlog_.capacity() < rest.size() || backlog_.capacity() < kReadBufferBytes)
    backlog_.reserve(rest.size() > kReadBufferBytes ? rest.size() : kReadBufferBytes);
  backlog_.assign(rest);
}

pump_state Pump::consumed(std::size_t n) {
  out_offset_ += n;
  if (out_offset_ >= out_.size()) drained();
  return state();
}

void Pump::drained() {
  // Parses the held-back input one high-water mark of output at a time: each round either
  // empties the backlog or stages output that the caller must write first.
  out_.clear();
  out_offset_ = 0;
  // After a large body, an own buffer is released; a thread's staging buffer keeps its size
  // (lend_back returns it to the thread, which serves the next large answer without allocating).
  if (!lending_ && out_.capacity() > kOutputHighWaterBytes) std::string().swap(out_);
  if (backlog_.empty()) return;
  if (codec_.closing()) {
    std::string().swap(backlog_);  // nothing after a closing response is read
    return;
  }
  parse(backlog_);  // an emptied backlog keeps its capacity: the next stop copies without allocating
}

void Pump::lend_back(std::string& staging) {
  if (out_offset_ < out_.size() || out_.capacity() <= kNoHeapCapacity) return;  // pending, or nothing to give
  if (staging.capacity() < out_.capacity()) {
    out_.clear();
    out_.swap(staging);
  }
  // The thread has a buffer again (it grew one while we kept ours): drop ours, which is idle now.
  if (out_.capacity() > kNoHeapCapacity) std::string().swap(out_);
}

}  // namespace cb::http
