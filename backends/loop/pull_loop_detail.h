// Internals shared by the pull-loop backends; not part of the loop's interface.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "backends/loop/pull_loop.h"

namespace cb::loop::detail {

// Backend constructors for make_pull_loop. Each throws std::system_error on failure.
std::unique_ptr<PullLoop> make_libev_pull_loop();
std::unique_ptr<PullLoop> make_epoll_pull_loop();

// Watchers expected at full load: the benchmark's largest point has 1024 connections, each with
// at most one watcher, plus listeners and timers. Tables sized for this never rehash in a run,
// so watch/unwatch cycles allocate nothing after start-up.
inline constexpr std::size_t kExpectedWatchers = 2048;

// Key -> Value map for the watch/unwatch hot path: open addressing with linear probing and
// backward-shift deletion, so insert and erase never allocate unless the table grows, and a
// re-watch of the same key reuses its slot. Keys are hashed by Fibonacci multiplication, which
// spreads both small sequential fds and aligned pointer values. Values must be copyable.
template <class Value>
class KeyTable {
 public:
  explicit KeyTable(std::size_t expected_keys) { rehash(capacity_for(expected_keys)); }

  // Returns the value stored under key, or nullptr. The pointer is valid until the next insert
  // or erase.
  Value* find(Key key) noexcept {
    for (std::size_t i = home(key);; i = (i + 1) & mask_) {
      Entry& e = entries_[i];
      if (!e.used) return nullptr;
      if (e.key == key) return &e.value;
    }
  }
  const Value* find(Key key) const noexcept { return const_cast<KeyTable*>(this)->find(key); }

  // Stores value under key and returns it, or returns nullptr (storing nothing) if key is already
  // present. Allocates only when the table grows past half full.
  Value* insert(Key key, const Value& value) {
    if ((size_ + 1) * 2 > entries_.size()) rehash(entries_.size() * 2);  // keep load <= 1/2
    for (std::size_t i = home(key);; i = (i + 1) & mask_) {
      Entry& e = entries_[i];
      if (!e.used) {
        e.key = key;
        e.value = value;
        e.used = true;
        ++size_;
        return &e.value;
      }
      if (e.key == key) return nullptr;
    }
  }

  // Removes key; returns false if it was absent. Never allocates.
  bool erase(Key key) noexcept {
    std::size_t hole = home(key);
    for (;; hole = (hole + 1) & mask_) {
      if (!entries_[hole].used) return false;
      if (entries_[hole].key == key) break;
    }
    // Backward shift: pull later entries of the probe run into the hole when the hole lies on
    // their probe path (their home is not in the cyclic interval (hole, j]), so that lookups
    // never meet a gap before reaching their key.
    for (std::size_t j = (hole + 1) & mask_; entries_[j].used; j = (j + 1) & mask_) {
      const std::size_t h = home(entries_[j].key);
      if (((j - h) & mask_) >= ((j - hole) & mask_)) {
        entries_[hole] = entries_[j];
        hole = j;
      }
    }
    entries_[hole].used = false;
    --size_;
    return true;
  }

  std::size_t size() const noexcept { return size_; }

 private:
  struct Entry {
    Key key = 0;
    Value value{};
    bool used = false;
  };

  // Smallest power of two holding `keys` at load <= 1/2; at least 16 so that shift_ < 64.
  static std::size_t capacity_for(std::size_t keys) noexcept {
    return std::bit_ceil(keys < 8 ? std::size_t{16} : keys * 2);
  }

  std::size_t home(Key key) const noexcept {
    constexpr std::uint64_t kGoldenRatio64 = 0x9E3779B97F4A7C15ull;  // 2^64 / phi
    return static_cast<std::size_t>((key * kGoldenRatio64) >> shift_);
  }

  void rehash(std::size_t capacity) {
    std::vector<Entry> old(capacity);
    old.swap(entries_);
    mask_ = capacity - 1;
    shift_ = 64 - std::countr_zero(capacity);
    size_ = 0;
    for (const Entry& e : old) {
      if (e.used) insert(e.key, e.value);
    }
  }

  std::vector<Entry> entries_;
  std::size_t mask_ = 0;
  int shift_ = 0;
  std::size_t size_ = 0;
};

}  // namespace cb::loop::detail
