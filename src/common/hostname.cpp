// Name normalisation shared by every name source; see hostname.hpp.
#include "ta/common/hostname.hpp"

#include <cstdint>

namespace ta {

void normalize_hostname(std::span<const std::byte> raw, std::string &out) {
  std::size_t n = raw.size();
  if (n > 0 && raw[n - 1] == std::byte{'.'}) {
    --n;
  }
  out.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    auto ch = std::to_integer<std::uint8_t>(raw[i]);
    if (ch >= 'A' && ch <= 'Z') {
      ch = static_cast<std::uint8_t>(ch - 'A' + 'a');
    }
    out[i] = static_cast<char>(ch);
  }
}

} // namespace ta
