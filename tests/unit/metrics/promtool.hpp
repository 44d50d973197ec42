// promtool (Debian package prometheus) as the judge of an exposition.
#pragma once

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <utility>

namespace ta::metrics {

inline bool have_promtool() {
  return std::system("command -v promtool >/dev/null 2>&1") == 0;
}

// promtool's exit status and output for `text` on its standard input.
inline std::pair<int, std::string> promtool_check_metrics(const std::string &text) {
  const auto dir = std::filesystem::temp_directory_path();
  const auto in = dir / ("metrics_test_" + std::to_string(getpid()) + ".prom");
  std::ofstream(in, std::ios::binary) << text;
  const std::string cmd = "promtool check metrics < '" + in.string() + "' 2>&1";
  FILE *p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[512];
  std::size_t n = 0;
  while (p != nullptr && (n = fread(buf, 1, sizeof buf, p)) > 0) {
    out.append(buf, n);
  }
  const int status = p != nullptr ? pclose(p) : -1;
  std::filesystem::remove(in);
  return {status, out};
}

} // namespace ta::metrics
