// What promtool's lint says of the legacy per-host names: they carry the
// hostname's words, and its metric-name rules read those words (README
// "Metrics"). The traffic_* families never draw a finding.
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ta/metrics/metrics.hpp"

#include "promtool.hpp"

namespace ta::metrics {
namespace {

// The findings for an exposition with `host` written, one line each.
std::set<std::string> findings_for(const std::string &host, bool legacy) {
  Options o;
  o.listen = "";
  o.tick_thread = false;
  o.legacy_names = legacy;
  auto m = Metrics::open(o);
  EXPECT_TRUE(m) << m.status().message();
  store::Batch b;
  b.endpoints = {host};
  b.packets.resize(1);
  m.value()->on_batch_sealed(b);
  m.value()->on_batch_written(b, 0.01);
  const auto [status, out] = promtool_check_metrics(m.value()->render());
  std::set<std::string> lines;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    lines.insert(line);
  }
  EXPECT_EQ(status == 0, lines.empty()) << out;
  return lines;
}

TEST(LegacyNamesLint, AUnitAbbreviationInAHostnameIsTheOneFinding) {
  ASSERT_TRUE(have_promtool()) << "promtool (Debian package prometheus, scripts/install-deps)";
  // "b" (bytes) between dots: the rule the original's names break.
  const std::string rule = "metric names should not contain abbreviated units";
  EXPECT_EQ(findings_for("cdn.b.example", true),
            (std::set<std::string>{"cdn_b_example_write_throughput " + rule,
                                   "cdn_b_example_writes_total " + rule}));
  EXPECT_TRUE(findings_for("cdn.b.example", false).empty()); // the label form is clean
  EXPECT_TRUE(findings_for("www.example.com", true).empty());
}

TEST(LegacyNamesLint, OtherNameRulesApplyToHostWordsTheSameWay) {
  ASSERT_TRUE(have_promtool()) << "promtool (Debian package prometheus, scripts/install-deps)";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"x.counter.example", "metric name should not include type 'counter'"},
      {"x.milliseconds.example", "use base unit \"seconds\" instead of \"milliseconds\""},
  };
  for (const auto &[host, rule] : cases) {
    std::string name = host;
    for (char &c : name) {
      c = c == '.' ? '_' : c;
    }
    EXPECT_EQ(findings_for(host, true), (std::set<std::string>{name + "_write_throughput " + rule,
                                                               name + "_writes_total " + rule}))
        << host;
    EXPECT_TRUE(findings_for(host, false).empty()) << host;
  }
}

} // namespace
} // namespace ta::metrics
