// store/int_math: rounding integer division for time buckets (seconds,
// hours, days from µs), shared by the backends (private to the store libraries).
// C++ division truncates toward zero; timestamps before 1970 are negative.
#pragma once

#include <cstdint>

namespace ta::store::detail {

[[nodiscard]] inline std::int64_t floor_div(std::int64_t a, std::int64_t b) noexcept {
  std::int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) {
    --q;
  }
  return q;
}

[[nodiscard]] inline std::int64_t ceil_div(std::int64_t a, std::int64_t b) noexcept {
  std::int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) == (b < 0))) {
    ++q;
  }
  return q;
}

} // namespace ta::store::detail
