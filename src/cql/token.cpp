// cql/token: Murmur3 tokens and routing keys (see token.hpp).
#include "token.hpp"

#include <array>
#include <limits>

#include "ta/common/byte_cursor.hpp"

namespace ta::cql::detail {

namespace {

constexpr std::uint64_t kC1 = 0x87c37b91114253d5ULL;
constexpr std::uint64_t kC2 = 0x4cf5ad432745937fULL;

constexpr std::uint64_t rotl(std::uint64_t x, int r) noexcept {
  return (x << static_cast<unsigned>(r)) | (x >> static_cast<unsigned>(64 - r));
}

constexpr std::uint64_t fmix(std::uint64_t k) noexcept {
  k ^= k >> 33U;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33U;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33U;
  return k;
}

// Little-endian 64-bit block (body bytes are unsigned here: whole blocks
// read the same either way).
std::uint64_t block(std::span<const std::byte> key, std::size_t at) noexcept {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i) {
    v |= std::uint64_t{std::to_integer<std::uint8_t>(key[at + i])} << (8U * i);
  }
  return v;
}

// A tail byte as Java reads it: signed, then widened (sign-extended).
std::uint64_t signed_byte(std::byte b) noexcept {
  return static_cast<std::uint64_t>(
      static_cast<std::int64_t>(static_cast<std::int8_t>(std::to_integer<std::uint8_t>(b))));
}

// One [bytes] of count x [bytes]: the value, or false for null/unset/short.
bool value_at(std::span<const std::byte> encoded, std::uint16_t count, std::uint16_t index,
              std::span<const std::byte> &out) {
  if (index >= count) {
    return false;
  }
  ByteCursor c(encoded);
  for (std::uint16_t i = 0;; ++i) {
    std::uint32_t raw = 0;
    if (!c.read_u32(raw)) {
      return false;
    }
    const auto len = static_cast<std::int32_t>(raw);
    if (i == index) {
      return len >= 0 && c.take(static_cast<std::size_t>(len), out);
    }
    if (len > 0 && !c.skip(static_cast<std::size_t>(len))) {
      return false;
    }
  }
}

} // namespace

std::int64_t murmur3_token(std::span<const std::byte> key) noexcept {
  const std::size_t len = key.size();
  const std::size_t nblocks = len / 16;
  std::uint64_t h1 = 0;
  std::uint64_t h2 = 0;
  for (std::size_t i = 0; i < nblocks; ++i) {
    std::uint64_t k1 = block(key, i * 16);
    std::uint64_t k2 = block(key, i * 16 + 8);
    k1 *= kC1;
    k1 = rotl(k1, 31);
    k1 *= kC2;
    h1 ^= k1;
    h1 = rotl(h1, 27);
    h1 += h2;
    h1 = h1 * 5 + 0x52dce729;
    k2 *= kC2;
    k2 = rotl(k2, 33);
    k2 *= kC1;
    h2 ^= k2;
    h2 = rotl(h2, 31);
    h2 += h1;
    h2 = h2 * 5 + 0x38495ab5;
  }
  const auto tail = key.subspan(nblocks * 16);
  std::uint64_t k1 = 0;
  std::uint64_t k2 = 0;
  // XOR, as the reference does: with signed bytes the sign bits of one byte
  // overlap the bytes above it, and XOR (not OR) is what Cassandra computes.
  for (std::size_t i = tail.size(); i > 8; --i) {
    k2 ^= signed_byte(tail[i - 1]) << (8U * (i - 9));
  }
  if (tail.size() > 8) {
    k2 *= kC2;
    k2 = rotl(k2, 33);
    k2 *= kC1;
    h2 ^= k2;
  }
  for (std::size_t i = std::min<std::size_t>(tail.size(), 8); i > 0; --i) {
    k1 ^= signed_byte(tail[i - 1]) << (8U * (i - 1));
  }
  if (!tail.empty()) {
    k1 *= kC1;
    k1 = rotl(k1, 31);
    k1 *= kC2;
    h1 ^= k1;
  }
  h1 ^= len;
  h2 ^= len;
  h1 += h2;
  h2 += h1;
  h1 = fmix(h1);
  h2 = fmix(h2);
  h1 += h2;
  const auto token = static_cast<std::int64_t>(h1);
  return token == std::numeric_limits<std::int64_t>::min()
             ? std::numeric_limits<std::int64_t>::max()
             : token;
}

bool routing_key(std::span<const std::byte> encoded_values, std::uint16_t count,
                 std::span<const std::uint16_t> pk_indices, std::vector<std::byte> &out) {
  out.clear();
  if (pk_indices.empty()) {
    return false;
  }
  std::span<const std::byte> v;
  if (pk_indices.size() == 1) {
    if (!value_at(encoded_values, count, pk_indices[0], v)) {
      return false;
    }
    out.assign(v.begin(), v.end());
    return true;
  }
  for (const std::uint16_t index : pk_indices) {
    if (!value_at(encoded_values, count, index, v) || v.size() > 0xFFFF) {
      return false;
    }
    out.push_back(static_cast<std::byte>(v.size() >> 8U));
    out.push_back(static_cast<std::byte>(v.size() & 0xFFU));
    out.insert(out.end(), v.begin(), v.end());
    out.push_back(std::byte{0});
  }
  return true;
}

} // namespace ta::cql::detail
