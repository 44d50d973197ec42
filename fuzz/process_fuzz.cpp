// libFuzzer target for the process mapper's socket-table parsers: the input
// as one sock_diag reply buffer (TCP), and as the text of a /proc/net/tcp
// and a /proc/net/tcp6 file.
// Checked invariants (abort on violation): no more entries than the bound,
// the rest counted; every entry has an IPv4 or IPv6 address at both ends;
// IPv4-mapped addresses never survive; an error is only set with a false
// return.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "socket_table.hpp"

namespace {

using ta::process::Protocol;
using ta::process::detail::DumpStats;
using ta::process::detail::SocketEntry;

void check(bool ok) {
  if (!ok) {
    std::abort();
  }
}

void check_entries(const std::vector<SocketEntry> &out, std::size_t bound) {
  check(out.size() <= bound);
  for (const SocketEntry &e : out) {
    check(e.local.valid() && e.remote.valid());
    check(ta::process::detail::unmap_v4(e.local) == e.local);
    check(ta::process::detail::unmap_v4(e.remote) == e.remote);
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  const auto *bytes = reinterpret_cast<const std::byte *>(data); // NOLINT: the fuzzer's API
  constexpr std::size_t bound = 8;
  {
    std::vector<SocketEntry> out;
    DumpStats stats;
    int error = 0;
    const bool more = ta::process::detail::parse_netlink_buffer(
        std::span(bytes, size), Protocol::tcp, out, bound, stats, error);
    check(error == 0 || !more);
    check_entries(out, bound);
  }
  const std::string_view text(reinterpret_cast<const char *>(data), size); // NOLINT
  for (const bool v6 : {false, true}) {
    std::vector<SocketEntry> out;
    DumpStats stats;
    ta::process::detail::parse_proc_net(text, Protocol::udp, v6, out, bound, stats);
    check_entries(out, bound);
  }
  return 0;
}
