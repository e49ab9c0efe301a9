// DutyCycle's two mappings (backends/loadgen/engine.h): on-time to wall time, and a window's
// on-time. Table-driven: slices, phase, slice length, the input, the expected output (ns).
#include <gtest/gtest.h>

#include <cstdint>

#include "backends/loadgen/engine.h"

namespace {

using cb::loadgen::DutyCycle;

struct Case {
  int slices, phase;
  std::int64_t slice_ns, in_ns, want_ns;
};

TEST(DutyCycle, WallOffsetOfOnTime) {
  const Case cases[] = {
      {1, 0, 0, 12345, 12345},    // off: identity
      {2, 0, 100, 0, 0},          // phase 0 starts at once
      {2, 0, 100, 99, 99},        // the end of the first slice
      {2, 0, 100, 100, 200},      // the next on-slice starts a cycle later
      {2, 1, 100, 0, 100},        // phase 1 starts one slice in
      {2, 1, 100, 150, 350},      // second cycle, half way through its on-slice
      {3, 2, 10, 25, 85},         // cycle 2 (at 60), phase 2 (+20), 5 in
      {4, 3, 1'000'000, 2'500'000, 8'000'000 + 3'000'000 + 500'000},  // cycle 2 at 8 ms
  };
  for (const auto& c : cases) {
    DutyCycle d{c.slices, c.phase, c.slice_ns};
    EXPECT_EQ(d.wall_offset_ns(c.in_ns), c.want_ns) << c.slices << ":" << c.phase << ":" << c.slice_ns << " at " << c.in_ns;
  }
}

TEST(DutyCycle, OnTimeOfWindow) {
  const Case cases[] = {
      {1, 0, 0, 777, 777},     // off: the whole window
      {2, 0, 100, 400, 200},   // two whole cycles
      {2, 1, 100, 400, 200},
      {2, 0, 100, 50, 50},     // inside the first on-slice
      {2, 1, 100, 50, 0},      // before phase 1's first slice
      {2, 1, 100, 150, 50},    // half of it
      {2, 1, 100, 250, 100},   // a cycle and a bit: the bit is off-time
      {3, 1, 10, 65, 20},      // cycles 0-1 give 20; 5 into cycle 2 is before slice 1
      {3, 1, 10, 75, 25},
  };
  for (const auto& c : cases) {
    DutyCycle d{c.slices, c.phase, c.slice_ns};
    EXPECT_EQ(d.active_ns(c.in_ns), c.want_ns) << c.slices << ":" << c.phase << ":" << c.slice_ns << " window " << c.in_ns;
  }
}

// Phases partition the wall: over whole cycles, every phase gets the same on-time and together
// they cover the window exactly once.
TEST(DutyCycle, PhasesPartitionTheWindow) {
  for (int slices = 2; slices <= 5; ++slices) {
    for (std::int64_t window : {0L, 1L, 99L, 1000L, 1234L}) {
      std::int64_t total = 0;
      for (int p = 0; p < slices; ++p) total += DutyCycle{slices, p, 100}.active_ns(window);
      EXPECT_EQ(total, window) << slices << " slices, window " << window;
    }
  }
}

}  // namespace
