// Shared helpers of the generator's tests: options, temporary paths, and
// running a command (tshark) with its output and exit status.
#pragma once

#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include <sys/wait.h>

#include "ta/generate/generate.hpp"

namespace ta::generate::test {

inline Options options(std::uint64_t packets, std::uint32_t endpoints = 20,
                       std::uint64_t seed = 7) {
  Options o;
  o.packets = packets;
  o.endpoints = endpoints;
  o.seed = seed;
  return o;
}

inline std::string temp_path(const std::string &name) {
  return (std::filesystem::temp_directory_path() /
          ("ta_generate_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

inline bool have_tshark() {
  return std::system("command -v tshark > /dev/null 2>&1") == 0;
}

struct CommandResult {
  std::string out;
  int exit_status = -1; // -1: did not exit normally
};

// Runs `command` through the shell; stdout only (stderr is the command's
// business: redirect it in `command`).
inline CommandResult run_command(const std::string &command) {
  CommandResult r;
  FILE *pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) {
    return r;
  }
  std::array<char, 4096> buf{};
  std::size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) {
    r.out.append(buf.data(), n);
  }
  const int status = ::pclose(pipe);
  if (status != -1 && WIFEXITED(status)) {
    r.exit_status = WEXITSTATUS(status);
  }
  return r;
}

} // namespace ta::generate::test
