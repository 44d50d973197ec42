// top/render: the view as plain text rows (top.hpp). Totals are exact
// integers (bytes, packets) so that batch output can be compared with
// `analyze`; rates are short human numbers per second.
#include <fmt/format.h>

#include "ta/top/top.hpp"

namespace ta::top {
namespace {

// NAME, sent bytes/s over 2/10/40 s, received bytes/s over 2/10/40 s,
// packets/s (both directions, 10 s), totals, flows, name source, program.
constexpr std::string_view kRowFormat =
    "{:<40} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>12} {:>12} {:>9} {:>9} {:>6} {:<8} {}";

std::string flows_text(std::int64_t flows) {
  return flows < 0 ? std::string("-") : fmt::format("{}", flows);
}

} // namespace

std::string human(double value) {
  if (value >= 1e9) {
    return fmt::format("{:.1f}G", value / 1e9);
  }
  if (value >= 1e6) {
    return fmt::format("{:.1f}M", value / 1e6);
  }
  if (value >= 1e3) {
    return fmt::format("{:.1f}k", value / 1e3);
  }
  return fmt::format("{:.0f}", value);
}

std::string render_header() {
  return fmt::format(fmt::runtime(kRowFormat), "NAME", "OUT/2s", "OUT/10s", "OUT/40s", "IN/2s",
                     "IN/10s", "IN/40s", "PKT/s", "SENT", "RECEIVED", "PKTS_OUT", "PKTS_IN",
                     "FLOWS", "SOURCE", "PROGRAM");
}

std::string render_row(const Row &r) {
  return fmt::format(fmt::runtime(kRowFormat), r.name, human(r.sent.bytes[0]),
                     human(r.sent.bytes[1]), human(r.sent.bytes[2]), human(r.received.bytes[0]),
                     human(r.received.bytes[1]), human(r.received.bytes[2]),
                     human(r.sent.packets[1] + r.received.packets[1]), r.totals.sent_bytes,
                     r.totals.received_bytes, r.totals.sent_packets, r.totals.received_packets,
                     flows_text(r.flows), r.source.empty() ? std::string("-") : r.source,
                     r.program.empty() ? std::string("-") : r.program);
}

std::string render_table(const std::vector<Row> &rows, std::size_t width) {
  std::string out;
  const auto line = [&](std::string text) {
    if (width > 0 && text.size() > width) {
      text.resize(width);
    }
    while (!text.empty() && text.back() == ' ') {
      text.pop_back();
    }
    out += text;
    out += '\n';
  };
  line(render_header());
  for (const Row &r : rows) {
    line(render_row(r));
  }
  return out;
}

} // namespace ta::top
