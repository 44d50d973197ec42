// libFuzzer target for the text parsers behind the command line's values
// (the CLI itself, CLI11, only routes strings to these): --since/--until
// (parse_time), --store (parse_store_spec), --metrics-listen (parse_listen),
// --local-net (IpPrefix::parse) and addresses (IpAddress::parse), --ports
// (the app's parse_ports, compiled in here).
//
// Input: byte 0 selects the parser (modulo 6), the rest is the text.
//
// Checked (abort on violation): what parses renders back to text that parses
// to the same value (times within years 0000-9999 through
// format_rfc3339_us, addresses through to_string, listen addresses through
// with_port, port lists through a comma list); a store spec that parses names
// a backend and, for SQLite, a path; a port list that fails says why.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "ta/common/address.hpp"
#include "ta/common/time.hpp"
#include "ta/store/spec.hpp"

#include "commands.hpp"
#include "listen.hpp"

namespace {

void check(bool ok) {
  if (!ok) {
    std::abort();
  }
}

// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z in µs.
constexpr ta::TimeUs kYear0 = -62'167'219'200'000'000;
constexpr ta::TimeUs kYear10000 = 253'402'300'800'000'000;

void fuzz_time(std::string_view text) {
  const auto t = ta::parse_time(text);
  if (!t || *t < kYear0 || *t >= kYear10000) {
    return;
  }
  const std::string again = ta::format_rfc3339_us(*t);
  const auto back = ta::parse_time(again);
  check(back.has_value() && *back == *t);
}

void fuzz_store(std::string_view text) {
  const auto spec = ta::store::parse_store_spec(text);
  if (!spec) {
    check(!spec.status().message().empty());
    return;
  }
  if (spec->backend == ta::store::Backend::sqlite) {
    check(!spec->sqlite_path.empty());
  }
}

void fuzz_listen(std::string_view text) {
  const auto a = ta::metrics::parse_listen(text);
  if (!a) {
    return;
  }
  const auto back = ta::metrics::parse_listen(a->with_port(a->port));
  check(back.has_value() && back->host == a->host && back->ipv6 == a->ipv6 &&
        back->port == a->port);
}

void fuzz_address(std::string_view text) {
  const auto a = ta::IpAddress::parse(text);
  if (!a) {
    return;
  }
  const auto back = ta::IpAddress::parse(a->to_string());
  check(back.has_value() && *back == *a);
}

void fuzz_prefix(std::string_view text) {
  const auto p = ta::IpPrefix::parse(text);
  if (!p) {
    return;
  }
  check(p->length <= (p->base.family == 6 ? 128 : 32));
  check(p->contains(p->base));
  const auto back =
      ta::IpPrefix::parse(p->base.to_string() + "/" + std::to_string(unsigned{p->length}));
  check(back.has_value() && back->base == p->base && back->length == p->length);
}

void fuzz_ports(std::string_view text) {
  std::vector<std::uint16_t> ports;
  std::string error;
  if (!ta::app::parse_ports(std::string(text), ports, error)) {
    check(!error.empty());
    return;
  }
  check(!ports.empty());
  if (ports.size() > 4096) {
    return; // re-rendering a wide range is slow and adds nothing
  }
  std::string list;
  for (const std::uint16_t p : ports) {
    list += (list.empty() ? "" : ",") + std::to_string(p);
  }
  std::vector<std::uint16_t> back;
  check(ta::app::parse_ports(list, back, error) && back == ports);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  if (size < 1) {
    return 0;
  }
  const std::string_view text(reinterpret_cast<const char *>(data + 1), size - 1);
  switch (data[0] % 6) {
  case 0:
    fuzz_time(text);
    break;
  case 1:
    fuzz_store(text);
    break;
  case 2:
    fuzz_listen(text);
    break;
  case 3:
    fuzz_address(text);
    break;
  case 4:
    fuzz_prefix(text);
    break;
  default:
    fuzz_ports(text);
    break;
  }
  return 0;
}
