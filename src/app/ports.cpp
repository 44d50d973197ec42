#include <charconv>

#include "commands.hpp"

namespace ta::app {
namespace {

bool parse_port(std::string_view s, std::uint16_t &out) {
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size() || s.empty() || v > 65535) {
    return false;
  }
  out = static_cast<std::uint16_t>(v);
  return true;
}

} // namespace

bool parse_ports(const std::string &text, std::vector<std::uint16_t> &out, std::string &error) {
  out.clear();
  std::string_view rest = text;
  while (!rest.empty()) {
    const auto comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    const auto dash = item.find('-');
    std::uint16_t lo = 0;
    std::uint16_t hi = 0;
    const bool ok = dash == std::string_view::npos
                        ? parse_port(item, lo) && (hi = lo, true)
                        : parse_port(item.substr(0, dash), lo) &&
                              parse_port(item.substr(dash + 1), hi) && lo <= hi;
    if (!ok) {
      error = "--ports: '" + std::string(item) +
              "' is not a port (0-65535) or range (LOW-HIGH); expected e.g. 80,443,8000-8100";
      return false;
    }
    for (unsigned p = lo; p <= hi; ++p) {
      out.push_back(static_cast<std::uint16_t>(p));
    }
  }
  if (out.empty()) {
    error = "--ports: empty list";
    return false;
  }
  return true;
}

} // namespace ta::app
