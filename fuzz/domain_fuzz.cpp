// libFuzzer target for registrable-domain grouping: the input as a hostname
// of any bytes, grouped twice (cold, then from the cache) by a Grouper with
// a small cache.
// Checked invariants (abort on violation): the key is empty only for an
// empty name; the cached answer is the computed one; a registrable key is a
// suffix of the lowered name, ending a label; an ip_literal key is the input
// itself; the cache stays within its bound; kinds have stable names.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ta/domain/registrable.hpp"

namespace {

void check(bool ok) {
  if (!ok) {
    std::abort();
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  static auto grouper = ta::domain::Grouper::create(16);
  check(grouper.ok());
  const std::string_view host(reinterpret_cast<const char *>(data), size); // NOLINT: fuzzer API
  const auto first = grouper->group(host);
  const auto again = grouper->group(host);
  check(first.key == again.key && first.kind == again.kind);
  check(first.key.empty() == host.empty());
  check(ta::domain::kind_name(first.kind) != "unknown");
  check(grouper->counters().entries <= 16);
  if (first.kind == ta::domain::Kind::ip_literal) {
    check(first.key == host);
  }
  if (first.kind == ta::domain::Kind::registrable) {
    std::string lowered(host);
    for (char &c : lowered) {
      if (c >= 'A' && c <= 'Z') {
        c = static_cast<char>(c - 'A' + 'a');
      }
    }
    if (!lowered.empty() && lowered.back() == '.') {
      lowered.pop_back();
    }
    check(lowered.size() >= first.key.size());
    check(lowered.compare(lowered.size() - first.key.size(), first.key.size(), first.key) == 0);
    check(lowered.size() == first.key.size() ||
          lowered[lowered.size() - first.key.size() - 1] == '.');
  }
  return 0;
}
