// The brackets a session puts around each system call that may wait (read, send), for models that
// emulate a process-wide lock released in blocking regions (queue::Gvl: Ruby's IO#read_nonblock
// releases its GVL around read(2), IO#write_nonblock holds it through write(2)). A session that is
// given none (nullptr, every model but the GVL emulations) makes the calls bare.
#pragma once

#include <cstdint>

namespace cb::net {

// Which system call a region brackets: the emulation decides per call whether it releases.
enum class SysCall : std::uint8_t { read, write };

class BlockingRegion {
 public:
  // Called just before the system call: the caller may let other threads run from here on.
  virtual void begin_blocking(SysCall call) = 0;
  // Called just after it, on the same thread: the caller may wait here until it may run again.
  virtual void end_blocking(SysCall call) = 0;

 protected:
  ~BlockingRegion() = default;
};

}  // namespace cb::net
