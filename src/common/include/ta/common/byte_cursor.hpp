// common/byte_cursor: the one way every parser in this project reads bytes.
// Part of ta_common, which links nothing but the standard library.
//
// Contract: a ByteCursor is a view over a span it does not own. Every read is
// bounds-checked and returns false (leaving the cursor where it was) when the
// bytes are not there; nothing throws and nothing allocates. Multi-byte reads
// are network byte order (big-endian) unless the name says otherwise.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace ta {

using Bytes = std::span<const std::byte>;

class ByteCursor {
public:
  constexpr ByteCursor() noexcept = default;
  constexpr explicit ByteCursor(Bytes data) noexcept : data_(data) {}

  [[nodiscard]] constexpr std::size_t offset() const noexcept { return pos_; }
  [[nodiscard]] constexpr std::size_t size() const noexcept { return data_.size(); }
  [[nodiscard]] constexpr std::size_t remaining() const noexcept { return data_.size() - pos_; }
  [[nodiscard]] constexpr bool empty() const noexcept { return pos_ == data_.size(); }
  [[nodiscard]] constexpr Bytes whole() const noexcept { return data_; }
  [[nodiscard]] constexpr Bytes rest() const noexcept { return data_.subspan(pos_); }

  // Moves to an absolute offset (DNS compression pointers need this).
  [[nodiscard]] constexpr bool seek(std::size_t absolute) noexcept {
    if (absolute > data_.size()) {
      return false;
    }
    pos_ = absolute;
    return true;
  }

  [[nodiscard]] constexpr bool skip(std::size_t n) noexcept {
    if (n > remaining()) {
      return false;
    }
    pos_ += n;
    return true;
  }

  [[nodiscard]] constexpr bool take(std::size_t n, Bytes &out) noexcept {
    if (n > remaining()) {
      return false;
    }
    out = data_.subspan(pos_, n);
    pos_ += n;
    return true;
  }

  [[nodiscard]] constexpr bool read_u8(std::uint8_t &out) noexcept {
    if (remaining() < 1) {
      return false;
    }
    out = u8_at(pos_);
    pos_ += 1;
    return true;
  }

  [[nodiscard]] constexpr bool read_u16(std::uint16_t &out) noexcept {
    if (remaining() < 2) {
      return false;
    }
    out = static_cast<std::uint16_t>((u8_at(pos_) << 8U) | u8_at(pos_ + 1));
    pos_ += 2;
    return true;
  }

  [[nodiscard]] constexpr bool read_u32(std::uint32_t &out) noexcept {
    if (remaining() < 4) {
      return false;
    }
    out = (std::uint32_t{u8_at(pos_)} << 24U) | (std::uint32_t{u8_at(pos_ + 1)} << 16U) |
          (std::uint32_t{u8_at(pos_ + 2)} << 8U) | std::uint32_t{u8_at(pos_ + 3)};
    pos_ += 4;
    return true;
  }

  // Little-endian and host-order variants exist for link layers that carry
  // them (BSD null/loopback stores the address family in host order).
  [[nodiscard]] constexpr bool read_u32_le(std::uint32_t &out) noexcept {
    if (remaining() < 4) {
      return false;
    }
    out = std::uint32_t{u8_at(pos_)} | (std::uint32_t{u8_at(pos_ + 1)} << 8U) |
          (std::uint32_t{u8_at(pos_ + 2)} << 16U) | (std::uint32_t{u8_at(pos_ + 3)} << 24U);
    pos_ += 4;
    return true;
  }

  // Reads without moving.
  [[nodiscard]] constexpr bool peek_u8(std::uint8_t &out) const noexcept {
    if (remaining() < 1) {
      return false;
    }
    out = u8_at(pos_);
    return true;
  }

private:
  [[nodiscard]] constexpr std::uint8_t u8_at(std::size_t i) const noexcept {
    return std::to_integer<std::uint8_t>(data_[i]);
  }

  Bytes data_{};
  std::size_t pos_ = 0;
};

} // namespace ta
