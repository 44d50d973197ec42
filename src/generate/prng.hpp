// A fixed PRNG so the capture is the same bytes on every run and platform:
// splitmix64 (Steele, Lea, Flood 2014), and range reduction by multiply-shift
// (no modulo, no rejection loop, no std::*_distribution whose output is
// implementation-defined).
#pragma once

#include <cstdint>

namespace ta::generate::detail {

class SplitMix64 {
public:
  explicit SplitMix64(std::uint64_t seed) noexcept : state_(seed) {}

  [[nodiscard]] std::uint64_t next() noexcept {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30U)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27U)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31U);
  }

  // Uniform-enough in [0, n); n == 0 gives 0.
  [[nodiscard]] std::uint32_t below(std::uint32_t n) noexcept {
    return static_cast<std::uint32_t>(((next() >> 32U) * n) >> 32U);
  }

  // Uniform-enough in [lo, hi].
  [[nodiscard]] std::uint32_t between(std::uint32_t lo, std::uint32_t hi) noexcept {
    return lo + below(hi - lo + 1);
  }

  [[nodiscard]] bool percent(std::uint32_t p) noexcept { return below(100) < p; }

private:
  std::uint64_t state_;
};

} // namespace ta::generate::detail
