// Initial keys (RFC 9001 §5.2, RFC 9369 §3.3) and the two primitives that
// use them: header protection (RFC 9001 §5.4) and the AEAD (§5.3).
//
// HKDF (RFC 5869) with SHA-256 is built on HMAC-SHA256:
//   HKDF-Extract(salt, ikm) = HMAC(salt, ikm)
//   HKDF-Expand(prk, info, L) = T(1) | T(2) ..., T(1) = HMAC(prk, info | 0x01);
//   every output here is at most 32 bytes, so T(1) truncated suffices.
// HKDF-Expand-Label (RFC 8446 §7.1) puts this HkdfLabel in `info`:
//   uint16 length = L;
//   opaque label<7..255> = "tls13 " + Label;
//   opaque context<0..255> = "" (one zero length byte).
#include "initial_keys.hpp"

#include <algorithm>
#include <cstring>
#include <string_view>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

namespace ta::quic {
namespace {

// RFC 9001 §5.2.
constexpr std::array<std::uint8_t, 20> kSaltV1 = {0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34,
                                                  0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8,
                                                  0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a};
// RFC 9369 §3.3.1.
constexpr std::array<std::uint8_t, 20> kSaltV2 = {0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6,
                                                  0xdb, 0x81, 0x93, 0x81, 0xbe, 0x6e, 0x26,
                                                  0x9d, 0xcb, 0xf9, 0xbd, 0x2e, 0xd9};

constexpr std::size_t kSecretLength = 32; // SHA-256

using Secret = std::array<unsigned char, kSecretLength>;

// HMAC-SHA256 through MAC contexts made once per thread, the algorithm and
// digest fetched once: the one-shot HMAC() looks both up by name on every
// call, which cost more than the hashing. A context keeps its key: setting
// a key costs two hash blocks and a round of context set-up, so the
// per-version salt is set once per thread and each secret once for the
// labels expanded from it (key, iv and hp share one).
class Hmac {
public:
  Hmac() noexcept {
    EVP_MAC *mac = EVP_MAC_fetch(nullptr, OSSL_MAC_NAME_HMAC, nullptr);
    ctx_ = mac != nullptr ? EVP_MAC_CTX_new(mac) : nullptr;
    EVP_MAC_free(mac); // the context holds its own reference
    if (ctx_ != nullptr) {
      char digest[] = "SHA256";
      const OSSL_PARAM params[] = {
          OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
          OSSL_PARAM_construct_end()};
      ready_ = EVP_MAC_CTX_set_params(ctx_, params) == 1;
    }
  }
  ~Hmac() { EVP_MAC_CTX_free(ctx_); }
  Hmac(const Hmac &) = delete;
  Hmac &operator=(const Hmac &) = delete;

  bool set_key(const unsigned char *key, std::size_t key_length) noexcept {
    fresh_ = ready_ && EVP_MAC_init(ctx_, key, key_length, nullptr) == 1;
    keyed_ = fresh_;
    return keyed_;
  }

  // HMAC(the key set last, in).
  bool mac(const unsigned char *in, std::size_t in_length, Secret &out) noexcept {
    if (!keyed_) {
      return false;
    }
    // A null key starts over with the key kept from set_key().
    if (!fresh_ && EVP_MAC_init(ctx_, nullptr, 0, nullptr) != 1) {
      return false;
    }
    fresh_ = false;
    std::size_t length = 0;
    return EVP_MAC_update(ctx_, in, in_length) == 1 &&
           EVP_MAC_final(ctx_, out.data(), &length, out.size()) == 1 && length == kSecretLength;
  }

private:
  EVP_MAC_CTX *ctx_ = nullptr;
  bool ready_ = false;
  bool keyed_ = false;
  bool fresh_ = false; // initialised and nothing hashed yet
};

// HKDF-Extract(salt, ikm) with the version's salt already keyed.
struct Extract {
  Hmac v1;
  Hmac v2;
  Extract() noexcept {
    v1.set_key(kSaltV1.data(), kSaltV1.size());
    v2.set_key(kSaltV2.data(), kSaltV2.size());
  }
};

Hmac &expand_mac() noexcept {
  thread_local Hmac h;
  return h;
}

bool hkdf_extract(bool v2, Bytes ikm, Secret &prk) noexcept {
  thread_local Extract extract;
  const auto *in = reinterpret_cast<const unsigned char *>(ikm.data());
  return (v2 ? extract.v2 : extract.v1).mac(in, ikm.size(), prk);
}

// HKDF-Expand-Label from the secret last given to expand_mac().set_key().
bool hkdf_expand_label(std::string_view label, unsigned char *out,
                       std::size_t out_length) noexcept {
  constexpr std::string_view kPrefix = "tls13 ";
  // 2 (length) + 1 (label length) + at most 6 + 10 ("quicv2 key") + 1 (context) + 1 (counter)
  std::array<unsigned char, 64> info{};
  const std::size_t label_length = kPrefix.size() + label.size();
  if (out_length > kSecretLength || 3 + label_length + 2 > info.size()) {
    return false;
  }
  std::size_t n = 0;
  info[n++] = static_cast<unsigned char>(out_length >> 8U);
  info[n++] = static_cast<unsigned char>(out_length & 0xFFU);
  info[n++] = static_cast<unsigned char>(label_length);
  std::memcpy(&info[n], kPrefix.data(), kPrefix.size());
  n += kPrefix.size();
  std::memcpy(&info[n], label.data(), label.size());
  n += label.size();
  info[n++] = 0; // empty context
  info[n++] = 1; // HKDF-Expand counter for T(1)
  Secret t{};
  if (!expand_mac().mac(info.data(), n, t)) {
    return false;
  }
  std::memcpy(out, t.data(), out_length);
  return true;
}

// AES-128-ECB (header protection) and AES-128-GCM (the AEAD), fetched once
// per thread; the EVP_aes_*() handles would be looked up at every key load.
struct Ciphers {
  EVP_CIPHER *ecb = EVP_CIPHER_fetch(nullptr, "AES-128-ECB", nullptr);
  EVP_CIPHER *gcm = EVP_CIPHER_fetch(nullptr, "AES-128-GCM", nullptr);
  Ciphers() noexcept = default;
  ~Ciphers() {
    EVP_CIPHER_free(ecb);
    EVP_CIPHER_free(gcm);
  }
  Ciphers(const Ciphers &) = delete;
  Ciphers &operator=(const Ciphers &) = delete;
};

const Ciphers &ciphers() noexcept {
  thread_local const Ciphers c;
  return c;
}

} // namespace

bool derive_client_initial_keys(Version version, Bytes dcid, InitialKeys &out) noexcept {
  const bool v2 = version == Version::v2;
  Secret initial{};
  Secret client{};
  Hmac &expand = expand_mac();
  if (!hkdf_extract(v2, dcid, initial) || !expand.set_key(initial.data(), initial.size()) ||
      !hkdf_expand_label("client in", client.data(), client.size()) ||
      !expand.set_key(client.data(), client.size())) {
    return false;
  }
  auto *key = reinterpret_cast<unsigned char *>(out.key.data());
  auto *iv = reinterpret_cast<unsigned char *>(out.iv.data());
  auto *hp = reinterpret_cast<unsigned char *>(out.hp.data());
  return hkdf_expand_label(v2 ? "quicv2 key" : "quic key", key, out.key.size()) &&
         hkdf_expand_label(v2 ? "quicv2 iv" : "quic iv", iv, out.iv.size()) &&
         hkdf_expand_label(v2 ? "quicv2 hp" : "quic hp", hp, out.hp.size());
}

namespace detail {

PacketKeys::PacketKeys() noexcept
    : hp_ctx_(EVP_CIPHER_CTX_new()), aead_ctx_(EVP_CIPHER_CTX_new()) {}

PacketKeys::~PacketKeys() {
  EVP_CIPHER_CTX_free(hp_ctx_);
  EVP_CIPHER_CTX_free(aead_ctx_);
}

bool PacketKeys::load(Version version, Bytes dcid) noexcept {
  loaded_ = false;
  if (hp_ctx_ == nullptr || aead_ctx_ == nullptr || dcid.size() > dcid_.size()) {
    return false;
  }
  InitialKeys keys;
  if (!derive_client_initial_keys(version, dcid, keys)) {
    return false;
  }
  const auto *key = reinterpret_cast<const unsigned char *>(keys.key.data());
  const auto *hp = reinterpret_cast<const unsigned char *>(keys.hp.data());
  // Once the contexts know their ciphers, a new key alone is loaded (naming
  // the cipher again resets and re-creates the context's state).
  const Ciphers &c = ciphers();
  const EVP_CIPHER *ecb = ciphers_set_ ? nullptr : c.ecb;
  const EVP_CIPHER *gcm = ciphers_set_ ? nullptr : c.gcm;
  if (c.ecb == nullptr || c.gcm == nullptr ||
      EVP_EncryptInit_ex(hp_ctx_, ecb, nullptr, hp, nullptr) != 1 ||
      EVP_CIPHER_CTX_set_padding(hp_ctx_, 0) != 1 ||
      EVP_DecryptInit_ex(aead_ctx_, gcm, nullptr, key, nullptr) != 1) {
    ciphers_set_ = false;
    return false;
  }
  ciphers_set_ = true;
  iv_ = keys.iv;
  std::copy(dcid.begin(), dcid.end(), dcid_.begin());
  dcid_length_ = dcid.size();
  version_ = version;
  loaded_ = true;
  return true;
}

bool PacketKeys::matches(Version version, Bytes dcid) const noexcept {
  return loaded_ && version == version_ && dcid.size() == dcid_length_ &&
         std::equal(dcid.begin(), dcid.end(), dcid_.begin());
}

bool PacketKeys::same_dcid(const PacketKeys &other) const noexcept {
  return dcid_length_ == other.dcid_length_ &&
         std::equal(dcid_.begin(), dcid_.begin() + static_cast<std::ptrdiff_t>(dcid_length_),
                    other.dcid_.begin());
}

bool PacketKeys::header_mask(const std::byte *sample,
                             std::array<std::byte, kSampleLength> &mask) noexcept {
  int length = 0;
  return EVP_EncryptUpdate(hp_ctx_, reinterpret_cast<unsigned char *>(mask.data()), &length,
                           reinterpret_cast<const unsigned char *>(sample),
                           static_cast<int>(kSampleLength)) == 1 &&
         length == static_cast<int>(kSampleLength);
}

bool PacketKeys::open(std::uint64_t packet_number, Bytes aad, std::byte *payload,
                      std::size_t length, const std::byte *tag) noexcept {
  std::array<unsigned char, 12> nonce{};
  for (std::size_t i = 0; i < nonce.size(); ++i) {
    nonce[i] = std::to_integer<unsigned char>(iv_[i]);
  }
  for (std::size_t i = 0; i < 8; ++i) {
    nonce[nonce.size() - 1 - i] ^= static_cast<unsigned char>((packet_number >> (8U * i)) & 0xFFU);
  }
  std::array<unsigned char, kTagLength> tag_copy{};
  std::memcpy(tag_copy.data(), tag, tag_copy.size());
  auto *data = reinterpret_cast<unsigned char *>(payload);
  int out = 0;
  // Setting only the nonce keeps the expanded key from load().
  return EVP_DecryptInit_ex(aead_ctx_, nullptr, nullptr, nullptr, nonce.data()) == 1 &&
         EVP_DecryptUpdate(aead_ctx_, nullptr, &out,
                           reinterpret_cast<const unsigned char *>(aad.data()),
                           static_cast<int>(aad.size())) == 1 &&
         EVP_DecryptUpdate(aead_ctx_, data, &out, data, static_cast<int>(length)) == 1 &&
         EVP_CIPHER_CTX_ctrl(aead_ctx_, EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTagLength),
                             tag_copy.data()) == 1 &&
         EVP_DecryptFinal_ex(aead_ctx_, data + out, &out) == 1;
}

} // namespace detail
} // namespace ta::quic
