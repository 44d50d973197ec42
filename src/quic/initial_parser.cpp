// InitialParser: client datagrams -> Initial packets -> CRYPTO stream ->
// ClientHello server_name.
//
// Long header (RFC 9000 §17.2; RFC 9369 §3.2 for v2's type bits):
//   byte 0   1 (header form) | 1 (fixed bit) | type(2) | reserved(2) | pn length - 1 (2)
//            (the low 4 bits are under header protection)
//   Version(32) | DCID Len(8) | DCID(0..20) | SCID Len(8) | SCID(0..20)
//   Initial only: Token Length(varint) | Token
//   Length(varint) = packet number + protected payload (tag included)
//   Packet Number(8..32) | Payload
// Type bits       v1  v2
//   Initial       00  01
//   0-RTT         01  10
//   Handshake     10  11
//   Retry         11  00   (no Length field: it ends the datagram)
// Packets after the first in a datagram are coalesced ones (RFC 9000 §12.2);
// a short-header packet has no length, so it (or padding) ends the walk.
//
// Keys (RFC 9001 §5.2): derived from the DCID of the client's first Initial.
// After a Retry the client's Initials carry the DCID the server chose, and
// the keys follow it (RFC 9000 §17.2.5.2); after the server's first Initial
// the client also sends to a new DCID but keeps its first keys. So a packet
// to another DCID is tried with the last keys that worked and, if the tag
// does not verify, with the keys of its own DCID (derived once per DCID and
// cached).
// When a new DCID's keys start working the client has taken a Retry and sends
// its ClientHello again from offset 0: the CRYPTO buffer starts over.
//
// Frames allowed in an Initial (RFC 9000 §12.4, Table 3): PADDING, PING,
// ACK, CRYPTO, CONNECTION_CLOSE (0x1c). A packet holding anything else, or a
// frame cut short, is discarded whole (bad_frame): frames are checked in one
// pass and applied in a second.
#include <algorithm>
#include <cstring>
#include <new>

#include "ta/quic/quic.hpp"
#include "ta/tls/tls.hpp"

#include "initial_keys.hpp"

namespace ta::quic {

std::string_view outcome_name(Outcome o) noexcept {
  switch (o) {
  case Outcome::need_more:
    return "need_more";
  case Outcome::sni:
    return "sni";
  case Outcome::no_sni:
    return "no_sni";
  case Outcome::unsupported_version:
    return "unsupported_version";
  case Outcome::not_quic:
    return "not_quic";
  }
  return "unknown";
}

std::string_view packet_error_name(PacketError e) noexcept {
  switch (e) {
  case PacketError::short_header:
    return "short_header";
  case PacketError::fixed_bit_clear:
    return "fixed_bit_clear";
  case PacketError::truncated_header:
    return "truncated_header";
  case PacketError::bad_connection_id:
    return "bad_connection_id";
  case PacketError::bad_token_length:
    return "bad_token_length";
  case PacketError::bad_length:
    return "bad_length";
  case PacketError::unsupported_version:
    return "unsupported_version";
  case PacketError::not_initial:
    return "not_initial";
  case PacketError::decrypt_failed:
    return "decrypt_failed";
  case PacketError::bad_frame:
    return "bad_frame";
  case PacketError::crypto_too_large:
    return "crypto_too_large";
  case PacketError::bad_client_hello:
    return "bad_client_hello";
  case PacketError::count_:
    break;
  }
  return "unknown";
}

namespace {

using detail::kMaxCidLength;
using detail::kSampleLength;
using detail::kTagLength;
using detail::PacketKeys;

constexpr std::uint8_t kHeaderForm = 0x80;
constexpr std::uint8_t kFixedBit = 0x40;
constexpr std::size_t kPnSampleOffset = 4; // RFC 9001 §5.4.2: sample at pn_offset + 4
// One UDP payload at most; larger "packets" (jumbograms) are bad_length.
constexpr std::size_t kScratchSize = 65536;
constexpr std::size_t kHandshakeHeader = 4; // msg_type(1) length(3)

enum class PacketType : std::uint8_t { initial, zero_rtt, handshake, retry };

PacketType packet_type(Version v, std::uint8_t first) noexcept {
  const auto bits = static_cast<std::uint8_t>((first >> 4U) & 0x03U);
  if (v == Version::v1) {
    return static_cast<PacketType>(bits);
  }
  // v2 rotates the v1 values by one (RFC 9369 §3.2).
  return static_cast<PacketType>((bits + 3U) & 0x03U);
}

// RFC 9000 §16: the two high bits of the first byte give the length (1, 2,
// 4 or 8 bytes); the rest is the value, big-endian.
bool read_varint(ByteCursor &c, std::uint64_t &out) noexcept {
  std::uint8_t first = 0;
  if (!c.read_u8(first)) {
    return false;
  }
  const std::size_t extra = (std::size_t{1} << (first >> 6U)) - 1;
  std::uint64_t v = first & 0x3FU;
  for (std::size_t i = 0; i < extra; ++i) {
    std::uint8_t b = 0;
    if (!c.read_u8(b)) {
      return false;
    }
    v = (v << 8U) | b;
  }
  out = v;
  return true;
}

// RFC 9000 §A.3: the full packet number closest to the next expected one.
std::uint64_t decode_packet_number(bool have_largest, std::uint64_t largest,
                                   std::uint64_t truncated, unsigned bits) noexcept {
  const std::uint64_t expected = have_largest ? largest + 1 : 0;
  const std::uint64_t win = std::uint64_t{1} << bits;
  const std::uint64_t hwin = win / 2;
  const std::uint64_t mask = win - 1;
  const std::uint64_t candidate = (expected & ~mask) | truncated;
  if (candidate + hwin <= expected && candidate < (std::uint64_t{1} << 62U) - win) {
    return candidate + win;
  }
  if (candidate > expected + hwin && candidate >= win) {
    return candidate - win;
  }
  return candidate;
}

// One buffer per thread for the packet being opened (header protection and
// the AEAD work in place); made on first use, never per packet.
std::byte *scratch() noexcept {
  struct Scratch {
    std::unique_ptr<std::byte[]> bytes{new (std::nothrow) std::byte[kScratchSize]};
  };
  thread_local const Scratch buf;
  return buf.bytes.get();
}

} // namespace

struct InitialParser::State {
  std::unique_ptr<PacketKeys> current = std::make_unique<PacketKeys>();   // last keys that worked
  std::unique_ptr<PacketKeys> candidate = std::make_unique<PacketKeys>(); // last other DCID seen
  std::uint64_t largest_pn = 0;
  bool have_largest = false;
  std::size_t contiguous = 0; // CRYPTO bytes [0, contiguous) are all present
  // Only bytes marked in `present` are ever read, so the buffer is not
  // zeroed (16 KiB per connection was a visible cost).
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-member-init,hicpp-member-init)
  std::array<std::byte, kMaxCrypto> crypto;
  std::array<std::uint8_t, kMaxCrypto / 8> present{}; // one bit per byte of `crypto`

  void restart_crypto() noexcept {
    contiguous = 0;
    present.fill(0);
  }

  // A new connection in the same memory.
  void recycle() noexcept {
    current->forget();
    candidate->forget();
    largest_pn = 0;
    have_largest = false;
    restart_crypto();
  }

  // Copies `data` to stream offset `offset`, clipped to the buffer. Later
  // bytes overwrite earlier ones (a retransmission carries the same bytes).
  // False when part of it lay beyond the bound.
  bool store(std::uint64_t offset, Bytes data) noexcept {
    if (offset >= kMaxCrypto) {
      return data.empty();
    }
    const auto at = static_cast<std::size_t>(offset);
    const std::size_t n = std::min(data.size(), kMaxCrypto - at);
    std::memcpy(&crypto[at], data.data(), n);
    for (std::size_t i = at; i < at + n; ++i) {
      present[i / 8] = static_cast<std::uint8_t>(present[i / 8] | (1U << (i % 8)));
    }
    while (contiguous < kMaxCrypto && (present[contiguous / 8] & (1U << (contiguous % 8))) != 0) {
      ++contiguous;
    }
    return n == data.size();
  }
};

InitialParser::InitialParser() noexcept = default;
InitialParser::~InitialParser() = default;
InitialParser::InitialParser(InitialParser &&) noexcept = default;
InitialParser &InitialParser::operator=(InitialParser &&) noexcept = default;

void InitialParser::finish(Outcome outcome, Bytes name) {
  final_ = outcome;
  done_ = true;
  if (outcome == Outcome::sni) {
    sni_.assign(reinterpret_cast<const char *>(name.data()), name.size());
  }
  spare_ = std::move(state_); // nothing more is read; kept for reset()
}

void InitialParser::reset() noexcept {
  if (state_) {
    spare_ = std::move(state_);
  }
  stats_ = InitialStats{};
  sni_.clear();
  final_ = Outcome::need_more;
  done_ = false;
}

namespace {

struct Opened {
  Bytes plaintext;
  std::uint64_t packet_number = 0;
};

// Removes header protection and opens the AEAD of `packet` (the whole
// Initial, pn_offset bytes of header before the packet number) with `keys`,
// in the scratch buffer.
bool try_open(PacketKeys &keys, Bytes packet, std::size_t pn_offset, bool have_largest,
              std::uint64_t largest, Opened &out) noexcept {
  std::byte *buf = scratch();
  if (buf == nullptr || packet.size() > kScratchSize) {
    return false;
  }
  std::memcpy(buf, packet.data(), packet.size());
  std::array<std::byte, kSampleLength> mask{};
  if (!keys.header_mask(buf + pn_offset + kPnSampleOffset, mask)) {
    return false;
  }
  // RFC 9001 §5.4.1: long headers protect the low 4 bits of byte 0.
  buf[0] ^= mask[0] & std::byte{0x0F};
  const std::size_t pn_length = (std::to_integer<std::size_t>(buf[0]) & 0x03U) + 1;
  std::uint64_t truncated = 0;
  for (std::size_t i = 0; i < pn_length; ++i) {
    buf[pn_offset + i] ^= mask[1 + i];
    truncated = (truncated << 8U) | std::to_integer<std::uint64_t>(buf[pn_offset + i]);
  }
  const std::size_t header_length = pn_offset + pn_length;
  // The caller made sure of 4 + 16 bytes after pn_offset, so this holds.
  if (packet.size() < header_length + kTagLength) {
    return false;
  }
  const std::size_t payload_length = packet.size() - header_length - kTagLength;
  const std::uint64_t pn =
      decode_packet_number(have_largest, largest, truncated, static_cast<unsigned>(pn_length * 8));
  if (!keys.open(pn, Bytes(buf, header_length), buf + header_length, payload_length,
                 buf + header_length + payload_length)) {
    return false;
  }
  out.plaintext = Bytes(buf + header_length, payload_length);
  out.packet_number = pn;
  return true;
}

// Walks the frames of a decrypted Initial. With `state` null it only
// checks; otherwise CRYPTO data goes to the state (false from `crypto_clipped`
// when some of it lay beyond the bound).
bool walk_frames(Bytes plaintext, InitialParser::State *state, bool &crypto_clipped) noexcept {
  ByteCursor c(plaintext);
  while (!c.empty()) {
    std::uint64_t type = 0;
    if (!read_varint(c, type)) {
      return false;
    }
    std::uint64_t a = 0;
    std::uint64_t b = 0;
    switch (type) {
    case 0x00: { // PADDING: a client pads its Initials to 1200 bytes, so take
                 // the whole run of zero bytes at once, not one frame a byte
      const Bytes rest = c.rest();
      std::size_t run = 0;
      while (run < rest.size() && rest[run] == std::byte{0}) {
        ++run;
      }
      (void)c.skip(run);
      break;
    }
    case 0x01: // PING
      break;
    case 0x02:   // ACK: Largest Acknowledged, ACK Delay, ACK Range Count, First ACK Range,
    case 0x03: { // ranges of (Gap, ACK Range Length); 0x03 adds ECT0, ECT1, ECN-CE counts
      std::uint64_t ranges = 0;
      if (!read_varint(c, a) || !read_varint(c, b) || !read_varint(c, ranges) ||
          !read_varint(c, a)) {
        return false;
      }
      // Every range takes at least two bytes, so this ends with the payload.
      for (std::uint64_t i = 0; i < ranges; ++i) {
        if (!read_varint(c, a) || !read_varint(c, b)) {
          return false;
        }
      }
      if (type == 0x03 && (!read_varint(c, a) || !read_varint(c, a) || !read_varint(c, a))) {
        return false;
      }
      break;
    }
    case 0x06: { // CRYPTO: Offset, Length, Crypto Data
      Bytes data;
      if (!read_varint(c, a) || !read_varint(c, b) || b > c.remaining() ||
          !c.take(static_cast<std::size_t>(b), data)) {
        return false;
      }
      if (state != nullptr && !state->store(a, data)) {
        crypto_clipped = true;
      }
      break;
    }
    case 0x1c: // CONNECTION_CLOSE: Error Code, Frame Type, Reason Phrase Length, Reason
      if (!read_varint(c, a) || !read_varint(c, a) || !read_varint(c, b) || b > c.remaining() ||
          !c.skip(static_cast<std::size_t>(b))) {
        return false;
      }
      break;
    default:
      return false;
    }
  }
  return true;
}

} // namespace

FeedResult InitialParser::feed(Bytes udp_payload) noexcept {
  if (done_) {
    return {final_, final_ == Outcome::sni ? std::string_view(sni_) : std::string_view()};
  }
  const auto count = [this](PacketError e) { ++stats_.errors[static_cast<std::size_t>(e)]; };
  bool saw_ours = false;  // a v1/v2 long header
  bool saw_other = false; // a long header of another version
  ByteCursor c(udp_payload);
  bool first_packet = true;
  while (!c.empty() && !done_) {
    const std::size_t start = c.offset();
    std::uint8_t first = 0;
    std::uint32_t version = 0;
    (void)c.read_u8(first);
    if ((first & kHeaderForm) == 0) {
      if (first_packet) {
        count(PacketError::short_header);
      }
      break; // a short header (or padding) runs to the end of the datagram
    }
    if ((first & kFixedBit) == 0) {
      count(PacketError::fixed_bit_clear);
      break;
    }
    if (!c.read_u32(version)) {
      count(PacketError::truncated_header);
      break;
    }
    if (version != kVersion1 && version != kVersion2) {
      // The rest of the layout is the version's own: nothing more to walk.
      count(PacketError::unsupported_version);
      saw_other = true;
      break;
    }
    saw_ours = true;
    const Version v = version == kVersion1 ? Version::v1 : Version::v2;
    std::uint8_t dcid_length = 0;
    std::uint8_t scid_length = 0;
    Bytes dcid;
    Bytes scid;
    if (!c.read_u8(dcid_length) || dcid_length > kMaxCidLength || !c.take(dcid_length, dcid) ||
        !c.read_u8(scid_length) || scid_length > kMaxCidLength || !c.take(scid_length, scid)) {
      count(dcid_length > kMaxCidLength || scid_length > kMaxCidLength
                ? PacketError::bad_connection_id
                : PacketError::truncated_header);
      break;
    }
    const PacketType type = packet_type(v, first);
    if (type == PacketType::retry) {
      count(PacketError::not_initial); // no Length field: nothing follows it
      break;
    }
    if (type == PacketType::initial) {
      std::uint64_t token_length = 0;
      if (!read_varint(c, token_length) || token_length > c.remaining() ||
          !c.skip(static_cast<std::size_t>(token_length))) {
        count(PacketError::bad_token_length);
        break;
      }
    }
    std::uint64_t length = 0;
    if (!read_varint(c, length)) {
      count(PacketError::truncated_header);
      break;
    }
    if (length > c.remaining()) {
      count(PacketError::bad_length);
      break;
    }
    const std::size_t pn_offset = c.offset() - start;
    const auto packet_end = c.offset() + static_cast<std::size_t>(length);
    first_packet = false;
    if (!c.seek(packet_end)) {
      break; // unreachable: length <= remaining
    }
    if (type != PacketType::initial) {
      count(PacketError::not_initial);
      continue;
    }
    if (length < kPnSampleOffset + kSampleLength) {
      count(PacketError::bad_length);
      continue;
    }
    open_initial(udp_payload.subspan(start, packet_end - start), pn_offset, v, dcid);
  }
  if (done_) {
    return {final_, final_ == Outcome::sni ? std::string_view(sni_) : std::string_view()};
  }
  if (saw_ours) {
    return {Outcome::need_more, {}};
  }
  return {saw_other ? Outcome::unsupported_version : Outcome::not_quic, {}};
}

void InitialParser::open_initial(Bytes packet, std::size_t pn_offset, Version version,
                                 Bytes dcid) noexcept {
  const auto count = [this](PacketError e) { ++stats_.errors[static_cast<std::size_t>(e)]; };
  if (!state_ && spare_) {
    state_ = std::move(spare_);
    state_->recycle();
  }
  if (!state_) {
    state_.reset(new (std::nothrow) State);
    if (!state_) {
      count(PacketError::decrypt_failed);
      return;
    }
  }
  State &st = *state_;
  Opened opened;
  bool ok = false;
  bool retried = false; // new keys took over from working ones (a Retry)
  if (st.current->matches(version, dcid)) {
    ok = try_open(*st.current, packet, pn_offset, st.have_largest, st.largest_pn, opened);
  } else {
    // The common case first: the server's DCID under the first keys. Only
    // when they fail are the keys of this DCID derived (a Retry).
    const bool have_current = st.current->loaded();
    if (have_current) {
      ok = try_open(*st.current, packet, pn_offset, st.have_largest, st.largest_pn, opened);
    }
    if (!ok) {
      if (!st.candidate->matches(version, dcid)) {
        ++stats_.key_derivations;
        if (!st.candidate->load(version, dcid)) {
          count(PacketError::decrypt_failed);
          return;
        }
      }
      ok = try_open(*st.candidate, packet, pn_offset, st.have_largest, st.largest_pn, opened);
      if (ok) {
        retried = have_current && !st.candidate->same_dcid(*st.current);
        st.current.swap(st.candidate);
      }
    }
  }
  if (!ok) {
    count(PacketError::decrypt_failed);
    return;
  }
  ++stats_.packets_decrypted;
  bool clipped = false;
  if (!walk_frames(opened.plaintext, nullptr, clipped)) {
    count(PacketError::bad_frame);
    return;
  }
  if (!st.have_largest || opened.packet_number > st.largest_pn) {
    st.largest_pn = opened.packet_number;
    st.have_largest = true;
  }
  if (retried) {
    st.restart_crypto();
  }
  (void)walk_frames(opened.plaintext, &st, clipped);
  if (clipped) {
    count(PacketError::crypto_too_large);
  }
  check_client_hello();
}

// RFC 8446 §4: msg_type(1) length(3). The ClientHello is parsed once all of
// [0, 4 + length) is present.
void InitialParser::check_client_hello() noexcept {
  const State &st = *state_;
  if (st.contiguous < kHandshakeHeader) {
    return;
  }
  const std::size_t body = (std::to_integer<std::size_t>(st.crypto[1]) << 16U) |
                           (std::to_integer<std::size_t>(st.crypto[2]) << 8U) |
                           std::to_integer<std::size_t>(st.crypto[3]);
  if (kHandshakeHeader + body > kMaxCrypto) {
    ++stats_.errors[static_cast<std::size_t>(PacketError::crypto_too_large)];
    finish(Outcome::no_sni, {});
    return;
  }
  if (st.contiguous < kHandshakeHeader + body) {
    return;
  }
  const tls::ClientHelloResult r =
      tls::parse_client_hello(Bytes(st.crypto.data(), kHandshakeHeader + body));
  switch (r.status) {
  case tls::ClientHelloStatus::ok:
    finish(Outcome::sni, r.server_name);
    return;
  case tls::ClientHelloStatus::no_sni:
    finish(Outcome::no_sni, {});
    return;
  case tls::ClientHelloStatus::need_more: // cannot happen: the message is whole
    return;
  case tls::ClientHelloStatus::too_large:
    ++stats_.errors[static_cast<std::size_t>(PacketError::crypto_too_large)];
    finish(Outcome::no_sni, {});
    return;
  default:
    ++stats_.errors[static_cast<std::size_t>(PacketError::bad_client_hello)];
    finish(Outcome::no_sni, {});
    return;
  }
}

} // namespace ta::quic
