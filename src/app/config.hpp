// app/config: the `--config FILE.toml` file, read strictly before anything
// starts. The file is parsed here (toml++) and handed to CLI11 as config
// items, so flags on the command line still override it and required
// options may come from it.
//
// Contract (README "Live capture, rotated files, directory ingest"):
// - top-level keys apply to every mode that has that option (a key no mode
//   knows is an error); a `[MODE]` section (`[run]`, `[watch]`, `[query]`,
//   ...) applies to that mode and overrides the top level;
// - an unknown section or key, a malformed line, a value of the wrong type
//   or out of range, and a file that is not a readable regular file of at
//   most kMaxConfigBytes are errors "FILE:LINE: key: reason" (exit 2).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace ta::app {

inline constexpr std::size_t kMaxConfigBytes = 1U << 20U;

// Where --config was found on the command line (before the mode name), and
// the mode path it precedes ({"watch"}, {"query", "endpoints"}).
struct ConfigRequest {
  bool given = false;
  std::string path;
  std::vector<std::string> mode;
  std::vector<std::string> argv; // the command line with --config FILE taken out
};
ConfigRequest find_config(int argc, char **argv);

// Reads and checks the file against `app`'s options; on success installs a
// CLI11 config formatter that yields the items for `request.mode`, and
// returns "". On failure returns the one-line error.
std::string load_config(CLI::App &app, const ConfigRequest &request);

} // namespace ta::app
