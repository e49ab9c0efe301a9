// Histogram contract (backends/loadgen/histogram.h): reported quantiles within 1% of the true
// value from 1 us to 1000 s, nothing dropped, merge equals recording everything in one.
#include "backends/loadgen/histogram.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

using cb::loadgen::Histogram;

namespace {

struct SingleValueCase {
  const char* label;
  double value_us;
};

// One sample: every quantile must be within the stated relative error of it.
const SingleValueCase kSingleValues[] = {
    {"one_us", 1.0},          {"just_above_one_us", 1.019}, {"ten_us", 10.0},
    {"odd_value", 1234.567},  {"one_ms", 1000.0},           {"one_s", 1e6},
    {"sixty_s", 60e6},        {"ten_minutes", 600e6},       {"bucket_edge", std::pow(1.02, 500)},
};

TEST(Histogram, SingleValueWithinRelativeError) {
  for (const auto& c : kSingleValues) {
    Histogram h;
    h.record(c.value_us);
    for (double q : {0.0, 0.5, 0.99, 1.0}) {
      double got = h.value_at_quantile(q);
      EXPECT_LE(std::abs(got - c.value_us) / c.value_us, Histogram::kRelativeError)
          << c.label << " q=" << q << " got " << got << " want " << c.value_us;
    }
    EXPECT_EQ(h.count(), 1u) << c.label;
  }
}

// Bucket midpoints, not clamping to min/max, must carry the bound: two samples far apart, the
// lower quantile reads the lower one's bucket.
TEST(Histogram, EveryBucketMidpointWithinBound) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> log_uniform(0.0, std::log(999e6));
  for (int i = 0; i < 20000; ++i) {
    double v = std::exp(log_uniform(rng));
    Histogram h;
    h.record(v);
    h.record(1e9 + 5);  // in the overflow bucket: makes max far from v, so no clamping to v
    double got = h.value_at_quantile(0.5);
    double err = std::abs(got - v) / v;
    ASSERT_LE(err, Histogram::kRelativeError) << "v=" << v << " got " << got;
  }
}

TEST(Histogram, NothingDroppedAboveRange) {
  Histogram h;
  h.record(5.0);
  h.record(2e9);  // 2000 s, beyond the tracked range
  EXPECT_EQ(h.count(), 2u);
  EXPECT_DOUBLE_EQ(h.max_us(), 2e9);
  EXPECT_DOUBLE_EQ(h.value_at_quantile(1.0), 2e9);
  EXPECT_EQ(h.count_above(1e9), 1u);
}

TEST(Histogram, BelowOneMicrosecondAndNegative) {
  Histogram h;
  h.record(0.2);
  h.record(-3.0);  // clock skew: counts as 0, still counted
  EXPECT_EQ(h.count(), 2u);
  EXPECT_LE(h.value_at_quantile(1.0), 1.0);
  EXPECT_GE(h.value_at_quantile(0.0), 0.0);
}

struct QuantileCase {
  const char* label;
  double q;
  double want_us;  // exact quantile of 1..10000 us, uniform
};

const QuantileCase kQuantileCases[] = {
    {"p50", 0.5, 5000}, {"p90", 0.9, 9000}, {"p99", 0.99, 9900}, {"p99.9", 0.999, 9990}, {"max", 1.0, 10000},
};

TEST(Histogram, QuantilesOfUniformData) {
  Histogram h;
  for (int v = 1; v <= 10000; ++v) h.record(v);
  for (const auto& c : kQuantileCases) {
    double got = h.value_at_quantile(c.q);
    EXPECT_LE(std::abs(got - c.want_us) / c.want_us, Histogram::kRelativeError) << c.label << " got " << got;
  }
  EXPECT_NEAR(h.mean_us(), 5000.5, 1e-6);
  // count_above is to bucket precision: the bucket around 5000 us holds about 2% of 5000 values.
  EXPECT_NEAR(static_cast<double>(h.count_above(5000)), 5000.0, 101.0);
}

TEST(Histogram, MergeEqualsRecordingInOne) {
  Histogram a, b, all;
  std::mt19937_64 rng(3);
  std::lognormal_distribution<double> d(8.0, 2.0);
  for (int i = 0; i < 5000; ++i) {
    double v = d(rng);
    (i % 2 ? a : b).record(v);
    all.record(v);
  }
  a.merge(b);
  EXPECT_EQ(a.count(), all.count());
  for (double q : {0.1, 0.5, 0.9, 0.99, 0.9999}) EXPECT_DOUBLE_EQ(a.value_at_quantile(q), all.value_at_quantile(q)) << q;
  EXPECT_DOUBLE_EQ(a.max_us(), all.max_us());
  std::uint64_t total = 0;
  for (const auto& bk : a.nonempty_buckets()) total += bk.count;
  EXPECT_EQ(total, a.count());
}

TEST(Histogram, EmptyIsZero) {
  Histogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.value_at_quantile(0.99), 0.0);
  EXPECT_EQ(h.max_us(), 0.0);
}

}  // namespace
