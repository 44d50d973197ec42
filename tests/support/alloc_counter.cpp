// The replaced global allocation functions behind ta/testing/alloc_counter.hpp.
// The nothrow forms too, so that every delete here frees what this file's
// malloc gave (ASan checks the pairing).
#include "ta/testing/alloc_counter.hpp"

#include <atomic>
#include <cstdlib>
#include <new>

namespace {
std::atomic<std::size_t> g_news{0};
} // namespace

std::size_t ta::testing::allocations() noexcept {
  return g_news.load(std::memory_order_relaxed);
}

void *operator new(std::size_t n) {
  g_news.fetch_add(1, std::memory_order_relaxed);
  if (void *p = std::malloc(n == 0 ? 1 : n)) {
    return p;
  }
  throw std::bad_alloc();
}
void *operator new[](std::size_t n) {
  return ::operator new(n);
}
void *operator new(std::size_t n, const std::nothrow_t & /*tag*/) noexcept {
  g_news.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n == 0 ? 1 : n);
}
void *operator new[](std::size_t n, const std::nothrow_t &tag) noexcept {
  return ::operator new(n, tag);
}
void operator delete(void *p) noexcept {
  std::free(p);
}
void operator delete[](void *p) noexcept {
  std::free(p);
}
void operator delete(void *p, std::size_t /*size*/) noexcept {
  std::free(p);
}
void operator delete[](void *p, std::size_t /*size*/) noexcept {
  std::free(p);
}
void operator delete(void *p, const std::nothrow_t & /*tag*/) noexcept {
  std::free(p);
}
void operator delete[](void *p, const std::nothrow_t & /*tag*/) noexcept {
  std::free(p);
}
