// Private to ta_quic: one set of client Initial keys with its cipher contexts
// ready, so that a packet costs one AES block (header protection) and one
// AES-GCM open, and never a key schedule (the contexts keep the expanded keys).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include <openssl/evp.h>

#include "ta/common/byte_cursor.hpp"
#include "ta/quic/quic.hpp"

namespace ta::quic::detail {

inline constexpr std::size_t kMaxCidLength = 20; // RFC 9000 §17.2
inline constexpr std::size_t kSampleLength = 16; // RFC 9001 §5.4.2
inline constexpr std::size_t kTagLength = 16;    // AEAD_AES_128_GCM

class PacketKeys {
public:
  PacketKeys() noexcept;
  ~PacketKeys();
  PacketKeys(const PacketKeys &) = delete;
  PacketKeys &operator=(const PacketKeys &) = delete;
  PacketKeys(PacketKeys &&) = delete;
  PacketKeys &operator=(PacketKeys &&) = delete;

  // Derives the keys of (version, dcid) and loads them into the contexts.
  [[nodiscard]] bool load(Version version, Bytes dcid) noexcept;
  [[nodiscard]] bool loaded() const noexcept { return loaded_; }
  // Unloads (a new connection); the cipher contexts stay allocated.
  void forget() noexcept {
    loaded_ = false;
    dcid_length_ = 0;
  }
  [[nodiscard]] bool matches(Version version, Bytes dcid) const noexcept;
  [[nodiscard]] bool same_dcid(const PacketKeys &other) const noexcept;

  // RFC 9001 §5.4.3: mask = AES-ECB(hp_key, sample); 5 bytes are used.
  [[nodiscard]] bool header_mask(const std::byte *sample,
                                 std::array<std::byte, kSampleLength> &mask) noexcept;

  // RFC 9001 §5.3: AEAD open in place with nonce = iv XOR packet number
  // (left-padded to the IV's 12 bytes). `aad` is the unprotected header.
  [[nodiscard]] bool open(std::uint64_t packet_number, Bytes aad, std::byte *payload,
                          std::size_t length, const std::byte *tag) noexcept;

private:
  EVP_CIPHER_CTX *hp_ctx_ = nullptr;
  EVP_CIPHER_CTX *aead_ctx_ = nullptr;
  std::array<std::byte, 12> iv_{};
  std::array<std::byte, kMaxCidLength> dcid_{};
  std::size_t dcid_length_ = 0;
  Version version_ = Version::v1;
  bool loaded_ = false;
  bool ciphers_set_ = false; // the contexts were initialised with their ciphers
};

} // namespace ta::quic::detail
