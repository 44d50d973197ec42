// Allocation counting for the no-allocation tests: a test binary that adds
// tests/support/alloc_counter.cpp to its sources replaces the global
// operator new (every form) with one that counts, binary-wide.
#pragma once

#include <cstddef>

namespace ta::testing {

// Calls to any operator new so far.
[[nodiscard]] std::size_t allocations() noexcept;

} // namespace ta::testing
