// The per-flow path must not allocate: parse_client_hello never, and a
// ClientHelloAssembler only in its constructor (reset() keeps the buffer).
// Counts calls to the (replaced, binary-wide) global operator new.
#include <atomic>
#include <cstdlib>
#include <new>

#include <gtest/gtest.h>

#include "ta/testing/alloc_counter.hpp"
#include "ta/tls/tls.hpp"

#include "test_util.hpp"

namespace ta::tls {
namespace {

std::size_t news() {
  return ta::testing::allocations();
}

TEST(NoAllocation, AnAssemblerAllocatesNothingUntilAHandshakeByteArrives) {
  const test::Buf header = test::hex("1603010200"); // a record header, no handshake byte yet
  const std::size_t before = news();
  ClientHelloAssembler a;
  a.feed(Bytes(header));
  EXPECT_EQ(news(), before);
}

TEST(NoAllocation, ParseAndAssemble) {
  const test::Buf rec = test::hex(test::kChromeRecord);
  const test::Buf msg = test::strip_record(rec);
  ClientHelloAssembler a;
  // The buffer comes with the first handshake byte, once.
  a.feed(Bytes(rec).subspan(0, 6));
  const std::size_t before = news();
  ASSERT_EQ(parse_client_hello(msg).status, ClientHelloStatus::ok);
  for (int round = 0; round < 3; ++round) {
    a.reset();
    for (std::size_t i = 0; i < rec.size(); i += 100) {
      a.feed(Bytes(rec).subspan(i, std::min<std::size_t>(100, rec.size() - i)));
    }
    ASSERT_EQ(a.result().status, ClientHelloStatus::ok);
  }
  EXPECT_EQ(news(), before);
}

} // namespace
} // namespace ta::tls
