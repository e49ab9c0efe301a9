// Latency histogram for cbench-load: log-bucketed, fixed memory, never drops a sample.
//
// Contract (the bound the tests check): every recorded value v in [kMinTrackedUs, kMaxTrackedUs]
// is reported (by value_at_quantile) as a value v' with |v' - v| / v <= kRelativeError (1%).
// Buckets grow geometrically by kBucketRatio = 1.02; a bucket [r^i, r^(i+1)) reports its
// geometric midpoint r^(i+0.5), which is within sqrt(1.02) - 1 = 0.995% of anything in it.
// Values below 1 us go to the first bucket (absolute error < 1 us); values above kMaxTrackedUs
// (1000 s, far above any run's 60 s) go to an overflow bucket that reports the exact maximum.
// Nothing is ever discarded: count() is the number of record() calls.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

namespace cb::loadgen {

class Histogram {
 public:
  static constexpr double kMinTrackedUs = 1.0;
  static constexpr double kMaxTrackedUs = 1e9;  // 1000 s
  static constexpr double kBucketRatio = 1.02;
  static constexpr double kRelativeError = 0.01;

  Histogram();

  // Records one sample in microseconds (negative values, from clock skew, count as 0).
  void record(double value_us);
  // Adds every sample of other (same bucket layout by construction).
  void merge(const Histogram& other);

  std::uint64_t count() const { return count_; }
  double min_us() const { return count_ ? min_us_ : 0.0; }
  double max_us() const { return count_ ? max_us_ : 0.0; }
  double mean_us() const { return count_ ? sum_us_ / static_cast<double>(count_) : 0.0; }
  // Number of samples strictly above threshold_us, to bucket precision (a bucket counts as above
  // when its midpoint is).
  std::uint64_t count_above(double threshold_us) const;
  // The value at quantile q in [0, 1] (the smallest bucket whose cumulative count reaches
  // ceil(q * count)), clamped to [min, max]; 0 when empty.
  double value_at_quantile(double q) const;

  // One non-empty bucket: samples in [low_us, high_us) (the overflow bucket's high is the max).
  struct Bucket {
    double low_us;
    double high_us;
    std::uint64_t count;
  };
  // The non-empty buckets in increasing order, for JSON dumps.
  std::vector<Bucket> nonempty_buckets() const;

 private:
  static std::size_t bucket_of(double value_us);
  static double midpoint_of(std::size_t bucket);

  std::vector<std::uint64_t> buckets_;  // last one is the overflow bucket
  std::uint64_t count_ = 0;
  double min_us_ = 0.0;
  double max_us_ = 0.0;
  double sum_us_ = 0.0;
};

}  // namespace cb::loadgen
