// libFuzzer target for token-aware routing's input handling:
//   1. the input after a 4-octet header as bound values (count x [bytes]):
//      octets 0-1 the value count, 2-3 how many partition-key indexes
//      follow from octet 4 on (one octet each); routing_key must not read
//      out of bounds, and a key it returns hashes;
//   2. the input as a ring: 9 octets per token (8 token, 1 node index mod 8),
//      racks and data centres from the node index, rf from the first octet,
//      for SimpleStrategy and NetworkTopologyStrategy.
// Checked invariants (abort on violation): replicas are distinct known
// nodes, never more than rf (Simple) or the sum of the factors (NTS).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

#include "ring.hpp"
#include "token.hpp"

namespace {

using namespace ta::cql::detail;

void check(bool ok) {
  if (!ok) {
    std::abort();
  }
}

void check_replicas(std::span<const std::uint32_t> r, std::size_t max, std::uint32_t nodes) {
  check(r.size() <= max);
  for (std::size_t i = 0; i < r.size(); ++i) {
    check(r[i] < nodes);
    for (std::size_t j = 0; j < i; ++j) {
      check(r[i] != r[j]);
    }
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  const std::span<const std::byte> in(reinterpret_cast<const std::byte *>(data), size);
  if (size >= 4) {
    const auto count = static_cast<std::uint16_t>((data[0] << 8U) | data[1]);
    const std::size_t npk = std::min<std::size_t>((data[2] << 8U) | data[3], size - 4);
    std::vector<std::uint16_t> pk;
    for (std::size_t i = 0; i < npk; ++i) {
      pk.push_back(data[4 + i]);
    }
    std::vector<std::byte> key;
    if (routing_key(in.subspan(4 + npk), count, pk, key)) {
      (void)murmur3_token(key);
    }
  }
  (void)murmur3_token(in);

  if (size < 10) {
    return 0;
  }
  const std::uint32_t rf = data[0] % 6;
  std::vector<std::pair<std::int64_t, std::uint32_t>> tokens;
  for (std::size_t at = 1; at + 9 <= size && tokens.size() < 256; at += 9) {
    std::uint64_t t = 0;
    for (std::size_t i = 0; i < 8; ++i) {
      t = (t << 8U) | data[at + i];
    }
    tokens.emplace_back(static_cast<std::int64_t>(t), data[at + 8] % 8U);
  }
  const std::vector<std::string> dc{"a", "a", "a", "b", "b", "c", "a", "b"};
  const std::vector<std::string> rack{"1", "2", "1", "1", "2", "1", "3"}; // node 7: none
  const TokenRing simple = TokenRing::build(tokens, Replication::simple(rf), dc, rack);
  const TokenRing nts = TokenRing::build(
      tokens, Replication::network_topology({{"a", rf}, {"b", rf / 2}, {"z", 2}}), dc, rack);
  for (const auto &[t, node] : tokens) {
    check_replicas(simple.replicas(t), rf, 8);
    check_replicas(nts.replicas(t), rf + rf / 2 + 2, 8);
    check_replicas(simple.replicas(static_cast<std::int64_t>(static_cast<std::uint64_t>(t) + 1)),
                   rf, 8);
  }
  return 0;
}
