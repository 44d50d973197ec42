#include "quic_initial.hpp"

#include <cstring>
#include <string_view>

#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace ta::generate::detail {
namespace {

constexpr std::array<std::uint8_t, 20> kSaltV1{0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34,
                                               0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8,
                                               0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a};
constexpr std::array<std::uint8_t, 20> kSaltV2{0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6,
                                               0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26,
                                               0x9d, 0xcb, 0xf9, 0xbd, 0x2e, 0xd9};

bool hmac_sha256(std::span<const std::uint8_t> key, std::span<const std::uint8_t> data,
                 std::array<std::uint8_t, 32> &out) noexcept {
  unsigned int n = 0;
  return HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), data.data(), data.size(),
              out.data(), &n) != nullptr &&
         n == out.size();
}

// HKDF-Expand-Label (RFC 8446 §7.1) with an empty context, for outputs of at
// most one hash length: T(1) = HMAC(secret, HkdfLabel || 0x01), where
// HkdfLabel = length u16, label<7..255> = "tls13 " + label, context<0..255>.
bool expand_label(const std::array<std::uint8_t, 32> &secret, std::string_view label,
                  std::span<std::uint8_t> out) noexcept {
  std::array<std::uint8_t, 64> info{};
  std::size_t n = 0;
  info[n++] = static_cast<std::uint8_t>(out.size() >> 8U);
  info[n++] = static_cast<std::uint8_t>(out.size());
  info[n++] = static_cast<std::uint8_t>(6 + label.size());
  std::memcpy(info.data() + n, "tls13 ", 6);
  n += 6;
  std::memcpy(info.data() + n, label.data(), label.size());
  n += label.size();
  info[n++] = 0; // context
  info[n++] = 1; // T(1)
  std::array<std::uint8_t, 32> t{};
  if (!hmac_sha256(secret, std::span<const std::uint8_t>(info.data(), n), t)) {
    return false;
  }
  std::memcpy(out.data(), t.data(), out.size());
  return true;
}

} // namespace

bool quic_client_initial_keys(std::uint32_t version, std::span<const std::uint8_t> dcid,
                              QuicKeys &keys) noexcept {
  const bool v2 = version == kQuicV2;
  std::array<std::uint8_t, 32> initial{};
  std::array<std::uint8_t, 32> client{};
  return hmac_sha256(v2 ? kSaltV2 : kSaltV1, dcid, initial) &&
         expand_label(initial, "client in", client) &&
         expand_label(client, v2 ? "quicv2 key" : "quic key", keys.key) &&
         expand_label(client, v2 ? "quicv2 iv" : "quic iv", keys.iv) &&
         expand_label(client, v2 ? "quicv2 hp" : "quic hp", keys.hp);
}

struct QuicInitialWriter::Ctx {
  EVP_CIPHER_CTX *gcm = EVP_CIPHER_CTX_new();
  EVP_CIPHER_CTX *ecb = EVP_CIPHER_CTX_new();
  EVP_CIPHER *aes_gcm = EVP_CIPHER_fetch(nullptr, "AES-128-GCM", nullptr);
  EVP_CIPHER *aes_ecb = EVP_CIPHER_fetch(nullptr, "AES-128-ECB", nullptr);

  Ctx() = default;
  Ctx(const Ctx &) = delete;
  Ctx &operator=(const Ctx &) = delete;
  ~Ctx() {
    EVP_CIPHER_CTX_free(gcm);
    EVP_CIPHER_CTX_free(ecb);
    EVP_CIPHER_free(aes_gcm);
    EVP_CIPHER_free(aes_ecb);
  }
};

QuicInitialWriter::QuicInitialWriter() : ctx_(std::make_unique<Ctx>()) {}

QuicInitialWriter::~QuicInitialWriter() = default;

std::size_t QuicInitialWriter::write(std::uint8_t *out, std::size_t capacity, std::uint32_t version,
                                     std::span<const std::uint8_t> dcid,
                                     std::span<const std::uint8_t> scid,
                                     std::uint16_t packet_number, std::uint32_t crypto_offset,
                                     std::span<const std::uint8_t> crypto) noexcept {
  constexpr std::size_t kTag = 16;
  constexpr std::size_t kPnLength = 2;
  Ctx &c = *ctx_;
  QuicKeys keys;
  const std::size_t pn_offset = 1 + 4 + 1 + dcid.size() + 1 + scid.size() + 1 + 2;
  const std::size_t payload = kQuicInitialSize - pn_offset - kPnLength - kTag;
  // CRYPTO frame header: type, offset (4-byte varint), length (2-byte varint).
  if (capacity < kQuicInitialSize || dcid.size() > 20 || scid.size() > 20 ||
      crypto.size() + 7 > payload || c.gcm == nullptr || c.ecb == nullptr || c.aes_gcm == nullptr ||
      c.aes_ecb == nullptr || !quic_client_initial_keys(version, dcid, keys)) {
    return 0;
  }
  const std::uint8_t type = version == kQuicV2 ? 1 : 0;
  std::size_t n = 0;
  out[n++] = static_cast<std::uint8_t>(0xC0U | (type << 4U) | (kPnLength - 1));
  for (int shift = 24; shift >= 0; shift -= 8) {
    out[n++] = static_cast<std::uint8_t>(version >> static_cast<unsigned>(shift));
  }
  out[n++] = static_cast<std::uint8_t>(dcid.size());
  std::memcpy(out + n, dcid.data(), dcid.size());
  n += dcid.size();
  out[n++] = static_cast<std::uint8_t>(scid.size());
  std::memcpy(out + n, scid.data(), scid.size());
  n += scid.size();
  out[n++] = 0; // token length
  const std::size_t length = kPnLength + payload + kTag;
  out[n++] = static_cast<std::uint8_t>(0x40U | (length >> 8U));
  out[n++] = static_cast<std::uint8_t>(length);
  out[n++] = static_cast<std::uint8_t>(packet_number >> 8U);
  out[n++] = static_cast<std::uint8_t>(packet_number);

  std::uint8_t *plain = out + n;
  std::size_t k = 0;
  plain[k++] = 0x06; // CRYPTO
  plain[k++] = static_cast<std::uint8_t>(0x80U | (crypto_offset >> 24U));
  plain[k++] = static_cast<std::uint8_t>(crypto_offset >> 16U);
  plain[k++] = static_cast<std::uint8_t>(crypto_offset >> 8U);
  plain[k++] = static_cast<std::uint8_t>(crypto_offset);
  plain[k++] = static_cast<std::uint8_t>(0x40U | (crypto.size() >> 8U));
  plain[k++] = static_cast<std::uint8_t>(crypto.size());
  std::memcpy(plain + k, crypto.data(), crypto.size());
  k += crypto.size();
  std::memset(plain + k, 0, payload - k); // PADDING frames

  std::array<std::uint8_t, 12> nonce = keys.iv;
  nonce[10] ^= static_cast<std::uint8_t>(packet_number >> 8U);
  nonce[11] ^= static_cast<std::uint8_t>(packet_number);
  int len = 0;
  if (EVP_EncryptInit_ex(c.gcm, c.aes_gcm, nullptr, keys.key.data(), nonce.data()) != 1 ||
      EVP_EncryptUpdate(c.gcm, nullptr, &len, out, static_cast<int>(n)) != 1 ||
      EVP_EncryptUpdate(c.gcm, plain, &len, plain, static_cast<int>(payload)) != 1 ||
      EVP_EncryptFinal_ex(c.gcm, plain + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(c.gcm, EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTag), plain + payload) !=
          1) {
    return 0;
  }

  std::array<std::uint8_t, 32> mask{};
  if (EVP_EncryptInit_ex(c.ecb, c.aes_ecb, nullptr, keys.hp.data(), nullptr) != 1 ||
      EVP_CIPHER_CTX_set_padding(c.ecb, 0) != 1 ||
      EVP_EncryptUpdate(c.ecb, mask.data(), &len, out + pn_offset + 4, 16) != 1) {
    return 0;
  }
  out[0] ^= static_cast<std::uint8_t>(mask[0] & 0x0FU);
  out[pn_offset] ^= mask[1];
  out[pn_offset + 1] ^= mask[2];
  return kQuicInitialSize;
}

} // namespace ta::generate::detail
