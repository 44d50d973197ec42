// libFuzzer target for the http stage: the input as a client's first TCP
// bytes -> parse_request_host, and a prefix of it cut at an offset chosen by
// the input's last two bytes.
// Checked invariants (abort on violation): a host is non-empty and lies in
// the first kMaxRequestHead bytes of the input; a prefix decides nothing or
// decides what the whole input decides (same status, same host view);
// statuses have their stable names.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "ta/common/hostname.hpp"
#include "ta/http/http.hpp"

namespace {

using ta::Bytes;
using ta::http::HostResult;
using ta::http::HostStatus;

void check(bool ok) {
  if (!ok) {
    std::abort();
  }
}

void check_result(const HostResult &r, Bytes from) {
  check(r.status < HostStatus::count_);
  check(ta::http::host_status_name(r.status) != "unknown");
  if (r.status != HostStatus::ok) {
    check(r.host.empty());
    return;
  }
  check(!r.host.empty());
  check(r.host.data() >= from.data());
  check(r.host.data() + r.host.size() <= from.data() + ta::http::kMaxRequestHead);
  check(r.host.data() + r.host.size() <= from.data() + from.size());
  std::string name;
  ta::normalize_hostname(r.host, name);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  const Bytes in(reinterpret_cast<const std::byte *>(data), size);
  const HostResult all = ta::http::parse_request_host(in);
  check_result(all, in);
  if (size < ta::http::kMaxRequestHead) {
    check(all.status != HostStatus::too_large);
  }

  std::size_t cut = 0;
  if (size >= 2) {
    cut = ((std::size_t{data[size - 2]} << 8U) | data[size - 1]) % (size + 1);
  }
  const HostResult part = ta::http::parse_request_host(in.first(cut));
  check_result(part, in);
  if (part.status != HostStatus::need_more) {
    check(part.status == all.status);
    check(part.host.data() == all.host.data() && part.host.size() == all.host.size());
  }
  return 0;
}
