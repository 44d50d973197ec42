// libFuzzer target for ta_quic's InitialParser.
// Input: a mode byte, two 16-bit big-endian cut points, then the bytes,
// cut into 1 + mode % 3 datagrams (at the cut points, clamped and sorted),
// all fed to one parser.
//   mode bit 7 clear: the datagrams are fed as they are (real client Initials
//     from the seed corpus, mangled: headers, lengths, coalescing; a mutated
//     payload fails the AEAD, which is the point too).
//   mode bit 7 set: each datagram is taken as the plaintext frames of an
//     Initial, protected here (v1, or v2 with bit 6) under a fixed DCID and
//     increasing packet numbers, so mutation reaches the frame walk, the
//     CRYPTO reassembly and the ClientHello parse behind the AEAD.
// Checked invariants (abort on violation): a final result stays final and
// the same, an sni result carries a name, the error counters only grow.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include <openssl/evp.h>

#include "ta/quic/quic.hpp"

namespace {

using ta::Bytes;
using ta::quic::InitialParser;
using ta::quic::Outcome;
using ta::quic::Version;

void check(bool ok) {
  if (!ok) {
    std::abort();
  }
}

constexpr std::array<std::uint8_t, 8> kDcid = {0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08};

// RFC 9001 §5.3-5.4 with a 2-byte packet number and a 2-byte Length.
std::vector<std::byte> protect(Version v, std::uint64_t pn, Bytes frames) {
  ta::quic::InitialKeys keys;
  const Bytes dcid(reinterpret_cast<const std::byte *>(kDcid.data()), kDcid.size());
  std::vector<std::byte> payload(frames.begin(), frames.end());
  if (payload.size() < 4) {
    payload.resize(4, std::byte{0}); // room for the header protection sample
  }
  if (payload.size() > 16000 || !ta::quic::derive_client_initial_keys(v, dcid, keys)) {
    return {};
  }
  const std::uint32_t version = v == Version::v1 ? ta::quic::kVersion1 : ta::quic::kVersion2;
  std::vector<unsigned char> p = {static_cast<unsigned char>(v == Version::v1 ? 0xC1 : 0xD1),
                                  static_cast<unsigned char>(version >> 24U),
                                  static_cast<unsigned char>(version >> 16U),
                                  static_cast<unsigned char>(version >> 8U),
                                  static_cast<unsigned char>(version),
                                  static_cast<unsigned char>(kDcid.size())};
  p.insert(p.end(), kDcid.begin(), kDcid.end());
  p.push_back(0); // SCID length
  p.push_back(0); // token length
  const std::size_t length = 2 + payload.size() + 16;
  p.push_back(static_cast<unsigned char>(0x40U | (length >> 8U)));
  p.push_back(static_cast<unsigned char>(length & 0xFFU));
  const std::size_t pn_offset = p.size();
  p.push_back(static_cast<unsigned char>((pn >> 8U) & 0xFFU));
  p.push_back(static_cast<unsigned char>(pn & 0xFFU));
  const std::size_t header = p.size();
  p.resize(header + payload.size() + 16);
  std::array<unsigned char, 12> nonce{};
  std::memcpy(nonce.data(), keys.iv.data(), nonce.size());
  for (std::size_t i = 0; i < 8; ++i) {
    nonce[11 - i] ^= static_cast<unsigned char>((pn >> (8U * i)) & 0xFFU);
  }
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  check(ctx != nullptr);
  int n = 0;
  EVP_EncryptInit_ex(ctx, EVP_aes_128_gcm(), nullptr,
                     reinterpret_cast<const unsigned char *>(keys.key.data()), nonce.data());
  EVP_EncryptUpdate(ctx, nullptr, &n, p.data(), static_cast<int>(header));
  EVP_EncryptUpdate(ctx, p.data() + header, &n,
                    reinterpret_cast<const unsigned char *>(payload.data()),
                    static_cast<int>(payload.size()));
  EVP_EncryptFinal_ex(ctx, p.data() + header + payload.size(), &n);
  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, p.data() + header + payload.size());
  std::array<unsigned char, 16> mask{};
  EVP_EncryptInit_ex(ctx, EVP_aes_128_ecb(), nullptr,
                     reinterpret_cast<const unsigned char *>(keys.hp.data()), nullptr);
  EVP_CIPHER_CTX_set_padding(ctx, 0);
  EVP_EncryptUpdate(ctx, mask.data(), &n, p.data() + pn_offset + 4, 16);
  EVP_CIPHER_CTX_free(ctx);
  p[0] = static_cast<unsigned char>(p[0] ^ (mask[0] & 0x0FU));
  p[pn_offset] ^= mask[1];
  p[pn_offset + 1] ^= mask[2];
  const auto *b = reinterpret_cast<const std::byte *>(p.data());
  return {b, b + p.size()};
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  constexpr std::size_t kPrefix = 5;
  if (size < kPrefix) {
    return 0;
  }
  const std::uint8_t mode = data[0];
  const auto *bytes = reinterpret_cast<const std::byte *>(data + kPrefix);
  const std::size_t n = size - kPrefix;
  const std::size_t parts = 1 + mode % 3;
  std::size_t a = std::min<std::size_t>(n, (std::size_t{data[1]} << 8U) | data[2]);
  std::size_t b = std::min<std::size_t>(n, (std::size_t{data[3]} << 8U) | data[4]);
  if (a > b) {
    std::swap(a, b);
  }
  std::array<std::size_t, 4> cut = {0, n, n, n};
  if (parts == 2) {
    cut[1] = a;
  } else if (parts == 3) {
    cut[1] = a;
    cut[2] = b;
  }

  InitialParser parser;
  bool final_seen = false;
  Outcome final_outcome = Outcome::need_more;
  std::string final_sni;
  std::uint64_t errors_before = 0;
  for (std::size_t i = 0; i < parts; ++i) {
    const Bytes piece(bytes + cut[i], cut[i + 1] - cut[i]);
    std::vector<std::byte> protected_packet;
    Bytes datagram = piece;
    if ((mode & 0x80U) != 0) {
      protected_packet = protect((mode & 0x40U) != 0 ? Version::v2 : Version::v1, i, piece);
      datagram = Bytes(protected_packet.data(), protected_packet.size());
    }
    const ta::quic::FeedResult r = parser.feed(datagram);
    if (final_seen) {
      check(r.outcome == final_outcome && r.sni == final_sni);
    } else if (r.outcome == Outcome::sni || r.outcome == Outcome::no_sni) {
      check(parser.done());
      check(r.outcome == Outcome::no_sni || !r.sni.empty());
      final_seen = true;
      final_outcome = r.outcome;
      final_sni = std::string(r.sni);
    } else {
      check(!parser.done() && r.sni.empty());
    }
    std::uint64_t errors = 0;
    for (const std::uint64_t e : parser.stats().errors) {
      errors += e;
    }
    check(errors >= errors_before);
    errors_before = errors;
  }
  return 0;
}
