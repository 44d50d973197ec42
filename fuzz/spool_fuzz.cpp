// libFuzzer target for the Cassandra spool's batch decoder: a spool file is
// on disk and may be damaged. Any input either decodes to a batch whose
// indexes are all in range and which re-encodes to exactly the input, or is
// refused with a message; never a crash or a read past the end.
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
    if (p.endpoint >= batch.endpoints.size() || !p.dst.valid()) {
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
  if (again.size() != size || std::memcmp(again.data(), data, size) != 0) {
    std::abort();
  }
  return 0;
}
