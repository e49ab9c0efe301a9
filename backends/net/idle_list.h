// Idle timeouts for event-loop models: an intrusive list ordered by deadline. All connections of
// a loop share one timeout, so the list stays sorted by moving a connection to the tail when its
// deadline is renewed: O(1) touch, O(expired) sweep, no allocation.
#pragma once
#include <chrono>

namespace cb::net {

using Clock = std::chrono::steady_clock;

// Embed in a connection object. A node is linked while its connection is open.
struct IdleNode {
  IdleNode* prev = nullptr;
  IdleNode* next = nullptr;
  Clock::time_point deadline{};
  bool linked = false;
};

class IdleList {
 public:
  explicit IdleList(std::chrono::milliseconds timeout) : timeout_(timeout) {}

  // Sets n's deadline to now + timeout and moves it to the tail. Connections call this when they
  // are accepted and when they complete a request (not on every byte, so that a client sending a
  // request a byte at a time still times out).
  void touch(IdleNode& n, Clock::time_point now) {
    unlink(n);
    n.deadline = now + timeout_;
    n.prev = tail_;
    n.next = nullptr;
    if (tail_) tail_->next = &n; else head_ = &n;
    tail_ = &n;
    n.linked = true;
  }

  // Removes n (no-op if not linked). Call before destroying its connection.
  void unlink(IdleNode& n) {
    if (!n.linked) return;
    if (n.prev) n.prev->next = n.next; else head_ = n.next;
    if (n.next) n.next->prev = n.prev; else tail_ = n.prev;
    n.prev = n.next = nullptr;
    n.linked = false;
  }

  // Returns the node with the oldest deadline if it has passed, else nullptr. The caller closes
  // it (which must unlink it) and calls again.
  IdleNode* expired(Clock::time_point now) const {
    return (head_ && head_->deadline <= now) ? head_ : nullptr;
  }

  std::chrono::milliseconds timeout() const { return timeout_; }

 private:
  std::chrono::milliseconds timeout_;
  IdleNode* head_ = nullptr;
  IdleNode* tail_ = nullptr;
};

}  // namespace cb::net
