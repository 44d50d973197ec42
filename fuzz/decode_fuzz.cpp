// libFuzzer target for ta::decode::decode_packet.
//
// Input: byte 0 selects the link type (index into kLinks, modulo its size),
// the rest is the frame. Seeds in fuzz/corpus/decode/ follow that layout, so
// kLinks is append-only: reordering it would silently re-label the corpus.
//
// Besides ASan/UBSan catching any over-read (libFuzzer hands us a buffer of
// exactly `size` bytes, so the frame ends where the allocation does), the
// target checks the contract of PacketView on every successful decode.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "ta/common/byte_cursor.hpp"
#include "ta/decode/decode.hpp"

namespace {

using ta::decode::DecodeError;
using ta::decode::LinkDirection;
using ta::decode::LinkType;

constexpr LinkType kLinks[] = {
    LinkType::ethernet,         // 0
    LinkType::linux_sll,        // 1
    LinkType::linux_sll2,       // 2
    LinkType::raw,              // 3
    LinkType::ipv4,             // 4
    LinkType::ipv6,             // 5
    LinkType::null_loopback,    // 6
    LinkType::loop,             // 7
    static_cast<LinkType>(147), // 8: LINKTYPE_USER0, unsupported
};
constexpr std::size_t kLinkCount = sizeof kLinks / sizeof kLinks[0];

// Not assert(): fuzz builds are RelWithDebInfo and define NDEBUG.
#define TA_FUZZ_CHECK(cond)                                                                        \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      std::fprintf(stderr, "decode_fuzz: check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);  \
      std::abort();                                                                                \
    }                                                                                              \
  } while (false)

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  if (size == 0) {
    return 0;
  }
  const LinkType link = kLinks[data[0] % kLinkCount];
  const ta::Bytes frame(reinterpret_cast<const std::byte *>(data + 1), size - 1);

  ta::decode::PacketView v;
  const DecodeError err = ta::decode::decode_packet(link, frame, v);

  TA_FUZZ_CHECK(static_cast<std::size_t>(err) < static_cast<std::size_t>(DecodeError::count_));
  TA_FUZZ_CHECK(ta::decode::to_string(err) != "unknown");
  TA_FUZZ_CHECK(ta::decode::is_supported(link) == (err != DecodeError::unsupported_link_type));
  if (err != DecodeError::ok) {
    return 0;
  }

  TA_FUZZ_CHECK(v.ip_version == 4 || v.ip_version == 6);
  TA_FUZZ_CHECK(v.src.family == v.ip_version && v.dst.family == v.ip_version);
  TA_FUZZ_CHECK(v.ip_length >= (v.ip_version == 4 ? 20U : 40U));
  if (link != LinkType::linux_sll && link != LinkType::linux_sll2) {
    TA_FUZZ_CHECK(v.direction == LinkDirection::unknown);
  }

  // Fragments: only a first fragment can carry ports.
  TA_FUZZ_CHECK(v.first_fragment || v.fragment);
  TA_FUZZ_CHECK(v.first_fragment || !v.has_ports);
  TA_FUZZ_CHECK(!v.has_ports || v.protocol == 6 || v.protocol == 17);
  TA_FUZZ_CHECK(v.has_ports || (v.src_port == 0 && v.dst_port == 0));
  TA_FUZZ_CHECK(v.has_ports || v.payload.empty());
  TA_FUZZ_CHECK(v.protocol == 6 || (v.tcp_seq == 0 && v.tcp_flags == 0));

  // The payload is a view into the frame (integer compare: no pointer UB).
  if (!v.payload.empty()) {
    const auto begin = reinterpret_cast<std::uintptr_t>(frame.data());
    const auto end = begin + frame.size();
    const auto p = reinterpret_cast<std::uintptr_t>(v.payload.data());
    TA_FUZZ_CHECK(p >= begin && p <= end && v.payload.size() <= end - p);
    // Clipped to the IP length: it cannot be longer than the IP packet.
    TA_FUZZ_CHECK(v.payload.size() < v.ip_length);
    // Touch every byte so ASan sees any view past the allocation.
    unsigned sum = 0;
    for (std::byte b : v.payload) {
      sum += std::to_integer<unsigned>(b);
    }
    volatile unsigned sink = sum;
    (void)sink;
  }
  return 0;
}
