#include "backends/loadgen/histogram.h"

#include <algorithm>
#include <cmath>

namespace cb::loadgen {
namespace {

const double kLogRatio = std::log(Histogram::kBucketRatio);
// Buckets that cover [1 us, 1000 s): ceil(ln(1e9) / ln(1.02)) = 1047.
const std::size_t kTrackedBuckets =
    static_cast<std::size_t>(std::ceil(std::log(Histogram::kMaxTrackedUs) / kLogRatio));

}  // namespace

Histogram::Histogram() : buckets_(kTrackedBuckets + 1, 0) {}

std::size_t Histogram::bucket_of(double value_us) {
  if (!(value_us >= kMinTrackedUs)) return 0;  // also catches NaN
  if (value_us >= kMaxTrackedUs) return kTrackedBuckets;
  auto b = static_cast<std::size_t>(std::log(value_us) / kLogRatio);
  return std::min(b, kTrackedBuckets - 1);
}

double Histogram::midpoint_of(std::size_t bucket) {
  return std::exp((static_cast<double>(bucket) + 0.5) * kLogRatio);
}

void Histogram::record(double value_us) {
  if (!(value_us > 0.0)) value_us = 0.0;
  ++buckets_[bucket_of(value_us)];
  if (count_ == 0 || value_us < min_us_) min_us_ = value_us;
  if (count_ == 0 || value_us > max_us_) max_us_ = value_us;
  sum_us_ += value_us;
  ++count_;
}

void Histogram::merge(const Histogram& other) {
  if (other.count_ == 0) return;
  for (std::size_t i = 0; i < buckets_.size(); ++i) buckets_[i] += other.buckets_[i];
  if (count_ == 0 || other.min_us_ < min_us_) min_us_ = other.min_us_;
  if (count_ == 0 || other.max_us_ > max_us_) max_us_ = other.max_us_;
  sum_us_ += other.sum_us_;
  count_ += other.count_;
}

std::uint64_t Histogram::count_above(double threshold_us) const {
  std::uint64_t n = 0;
  for (std::size_t i = 0; i < kTrackedBuckets; ++i)
    if (midpoint_of(i) > threshold_us) n += buckets_[i];
  if (max_us_ > threshold_us) n += buckets_[kTrackedBuckets];
  return n;
}

double Histogram::value_at_quantile(double q) const {
  if (count_ == 0) return 0.0;
  q = std::clamp(q, 0.0, 1.0);
  auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_)));
  if (rank == 0) rank = 1;
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    seen += buckets_[i];
    if (seen >= rank) {
      if (i == kTrackedBuckets) return max_us_;
      return std::clamp(midpoint_of(i), min_us_, max_us_);
    }
  }
  return max_us_;
}

std::vector<Histogram::Bucket> Histogram::nonempty_buckets() const {
  std::vector<Bucket> out;
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    if (buckets_[i] == 0) continue;
    if (i == kTrackedBuckets) {
      out.push_back({kMaxTrackedUs, max_us_, buckets_[i]});
    } else {
      double low = i == 0 ? 0.0 : std::exp(static_cast<double>(i) * kLogRatio);
      out.push_back({low, std::exp(static_cast<double>(i + 1) * kLogRatio), buckets_[i]});
    }
  }
  return out;
}

}  // namespace cb::loadgen
