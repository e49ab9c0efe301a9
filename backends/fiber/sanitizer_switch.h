// Stack-switch annotations for the sanitizers, around every Boost.Context fiber switch.
//
// Boost 1.74 annotates switches for ASan only in its ucontext implementation, and for TSan not
// at all; the fiber model uses the default fcontext implementation (the one measured) in every
// build and annotates the switches itself, so the sanitized binary runs the same code:
//   ASan: __sanitizer_start_switch_fiber before a switch (naming the target stack), and
//         __sanitizer_finish_switch_fiber right after control arrives (learning the stack it
//         came from), so ASan's stack bookkeeping (fake stacks, no-return) follows the switch;
//   TSan: one TSan fiber context per fiber (__tsan_create_fiber / __tsan_destroy_fiber) and
//         __tsan_switch_to_fiber before each switch, so happens-before is tracked per fiber.
// Without a sanitizer every function here is an empty inline.
#pragma once
#include <cstddef>

#if defined(__SANITIZE_ADDRESS__)
#define CBENCH_FIBER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CBENCH_FIBER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define CBENCH_FIBER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CBENCH_FIBER_TSAN 1
#endif
#endif

#if defined(CBENCH_FIBER_ASAN)
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(CBENCH_FIBER_TSAN)
#include <sanitizer/tsan_interface.h>
#endif

namespace cb::fiber {

// One side of a switch: a stack (bottom, size) and a TSan context. The scheduler's own side is
// filled in the first time a fiber switches back to it.
struct SwitchSide {
  const void* stack_bottom = nullptr;
  std::size_t stack_bytes = 0;
  void* tsan_fiber = nullptr;
};

// Creates the TSan context of a new fiber (call in the scheduler, before its first resume).
inline void on_create(SwitchSide& fiber_side) {
#if defined(CBENCH_FIBER_TSAN)
  fiber_side.tsan_fiber = __tsan_create_fiber(0);
#else
  (void)fiber_side;
#endif
}

// Destroys it (after the fiber has finished and control is back in the scheduler).
inline void on_destroy(SwitchSide& fiber_side) {
#if defined(CBENCH_FIBER_TSAN)
  if (fiber_side.tsan_fiber) __tsan_destroy_fiber(fiber_side.tsan_fiber);
  fiber_side.tsan_fiber = nullptr;
#else
  (void)fiber_side;
#endif
}

// The scheduler's side for this thread (main stack, TSan's current context).
inline SwitchSide& scheduler_side() {
  thread_local SwitchSide side;
#if defined(CBENCH_FIBER_TSAN)
  if (side.tsan_fiber == nullptr) side.tsan_fiber = __tsan_get_current_fiber();
#endif
  return side;
}

// Just before switching to `to`. `fake_stack` is per switch site (a local); `leaving_for_good`
// says the current stack will never run again (a fiber that returns), so ASan frees its fake stack.
inline void before_switch(const SwitchSide& to, void** fake_stack, bool leaving_for_good = false) {
#if defined(CBENCH_FIBER_ASAN)
  __sanitizer_start_switch_fiber(leaving_for_good ? nullptr : fake_stack, to.stack_bottom, to.stack_bytes);
#else
  (void)fake_stack;
  (void)leaving_for_good;
#endif
#if defined(CBENCH_FIBER_TSAN)
  __tsan_switch_to_fiber(to.tsan_fiber, 0);
#else
  (void)to;
#endif
}

// Just after control arrives. `from` (may be null) receives the stack we came from.
inline void after_switch(void* fake_stack, SwitchSide* from) {
#if defined(CBENCH_FIBER_ASAN)
  const void* bottom = nullptr;
  std::size_t size = 0;
  __sanitizer_finish_switch_fiber(fake_stack, &bottom, &size);
  if (from != nullptr) {
    from->stack_bottom = bottom;
    from->stack_bytes = size;
  }
#else
  (void)fake_stack;
  (void)from;
#endif
}

}  // namespace cb::fiber
