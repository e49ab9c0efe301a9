// Memory whose readable part is followed by a PROT_NONE page, for the parser and pump tests:
// place() copies bytes so that the last one is the last readable byte, so any read past the end
// of the returned view faults instead of reading a neighbour's bytes.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <stdexcept>
#include <string_view>

namespace cb::test {

class GuardedBuffer {
 public:
  explicit GuardedBuffer(std::size_t capacity) {
    page_ = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    readable_ = std::max<std::size_t>(1, (capacity + page_ - 1) / page_) * page_;
    void* p = mmap(nullptr, readable_ + page_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::runtime_error("mmap failed");
    base_ = static_cast<char*>(p);
    if (mprotect(base_ + readable_, page_, PROT_NONE) != 0) throw std::runtime_error("mprotect failed");
  }
  ~GuardedBuffer() { munmap(base_, readable_ + page_); }
  GuardedBuffer(const GuardedBuffer&) = delete;
  GuardedBuffer& operator=(const GuardedBuffer&) = delete;

  // Copies s so that its last byte is the last readable one.
  std::string_view place(std::string_view s) {
    if (s.size() > readable_) throw std::runtime_error("GuardedBuffer too small");
    char* at = base_ + readable_ - s.size();
    if (!s.empty()) std::memcpy(at, s.data(), s.size());
    return {at, s.size()};
  }
  // Overwrites a placed view: what a kernel does with a buffer handed back to it.
  static void scribble(std::string_view placed) { std::memset(const_cast<char*>(placed.data()), '#', placed.size()); }

 private:
  char* base_ = nullptr;
  std::size_t page_ = 0;
  std::size_t readable_ = 0;
};

}  // namespace cb::test
