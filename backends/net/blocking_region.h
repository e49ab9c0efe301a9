// The brackets a session puts around each system call that may wait (read, send), for models that
// emulate a process-wide lock released in blocking regions (queue::Gvl: Ruby releases its GVL
// around the read and write system calls of IO). A session that is given none (nullptr, every
// model but the GVL emulations) makes the calls bare.
#pragma once

namespace cb::net {

class BlockingRegion {
 public:
  // Called just before the system call: the caller may let other threads run from here on.
  virtual void begin_blocking() = 0;
  // Called just after it, on the same thread: the caller may wait here until it may run again.
  virtual void end_blocking() = 0;

 protected:
  ~BlockingRegion() = default;
};

}  // namespace cb::net
