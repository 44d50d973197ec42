// libFuzzer target for the Cassandra spool's batch decoder: a spool file is
// on disk and may be damaged. Any input either decodes to a batch whose
// indexes are all in range and which re-encodes to exactly the input (an
// input in an older format, "TAB1" or "TAB2": to bytes that
// decode to the same batch again), or is refused with a message; never a
// crash or a read past the end.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "batch_codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  const ta::Bytes input(reinterpret_cast<const std::byte *>(data), size);
  ta::store::Batch batch;
  std::string error;
  if (!ta::store::detail::decode_batch(input, batch, error)) {
    if (error.empty() || !batch.packets.empty()) {
      std::abort();
    }
    return 0;
  }
  for (const auto &p : batch.packets) {
    if (p.endpoint >= batch.endpoints.size() || !p.dst.valid() ||
        p.direction > ta::store::Direction::received || p.source >= ta::store::NameSource::count_ ||
        (p.flow != ta::store::kNoFlow && p.flow >= batch.flows.size())) {
      std::abort();
    }
  }
  for (const auto &f : batch.flows) {
    if (f.name >= batch.endpoints.size() || !f.client.valid() || !f.endpoint_address.valid() ||
        f.source >= ta::store::NameSource::count_) {
      std::abort();
    }
  }
  for (const auto &l : batch.learnt) {
    if (l.name >= batch.endpoints.size()) {
      std::abort();
    }
  }
  std::vector<std::byte> again;
  ta::store::detail::encode_batch(batch, again);
  // Older formats ("TAB1" before flow naming, "TAB2" before programs were
  // kept) re-encode as the current one.
  const bool old_format = size >= 4 && (data[3] == '1' || data[3] == '2');
  if (!old_format) {
    if (again.size() != size || std::memcmp(again.data(), data, size) != 0) {
      std::abort();
    }
    return 0;
  }
  // The old format re-encodes as the current one, which is a fixed point.
  ta::store::Batch twice;
  std::vector<std::byte> thrice;
  if (!ta::store::detail::decode_batch(again, twice, error) ||
      twice.packets.size() != batch.packets.size() || twice.flows.size() != batch.flows.size()) {
    std::abort();
  }
  ta::store::detail::encode_batch(twice, thrice);
  if (thrice != again) {
    std::abort();
  }
  return 0;
}
