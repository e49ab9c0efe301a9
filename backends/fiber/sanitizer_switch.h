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

#if defined(CBENCH_FIBER_TSAN)
// TSan contexts of finished fibers, reused by new ones on the same thread: __tsan_create_fiber
// costs about 2 ms under TSan (a new connection per 2 ms made the conformance gate's churn and
// slowloris cases time out). Reuse only adds happens-before edges between a finished fiber and
// its successor on the same thread (which the scheduler orders anyway): it can hide a race
// between them, never report a false one.
struct TsanFiberPool {
  static constexpr int kMax = 4096;
  void* free_list[kMax];
  int size = 0;
};
inline TsanFiberPool& tsan_fiber_pool() {
  thread_local TsanFiberPool pool;
  return pool;
}
#endif

// Creates the TSan context of a new fiber (call in the scheduler, before its first resume).
inline void on_create(SwitchSide& fiber_side) {
#if defined(CBENCH_FIBER_TSAN)
  TsanFiberPool& pool = tsan_fiber_pool();
  fiber_side.tsan_fiber = pool.size > 0 ? pool.free_list[--pool.size] : __tsan_create_fiber(0);
#else
  (void)fiber_side;
#endif
}

// Destroys (or pools) it, after the fiber has finished and control is back in the scheduler.
inline void on_destroy(SwitchSide& fiber_side) {
#if defined(CBENCH_FIBER_TSAN)
  TsanFiberPool& pool = tsan_fiber_pool();
  if (fiber_side.tsan_fiber) {
    if (pool.size < TsanFiberPool::kMax) pool.free_list[pool.size++] = fiber_side.tsan_fiber;
    else __tsan_destroy_fiber(fiber_side.tsan_fiber);
  }
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
