// Test helpers of the capture unit tests: a temporary directory per test,
// the one-line check every error message of the library must pass, and
// gtest's view of a ta::Status.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <system_error>

#include <gtest/gtest.h>

#include "ta/common/status.hpp"

namespace ta::capture::test {

// A fresh directory under the system's temporary directory (mkdtemp),
// removed with everything in it when the object goes. path() is "" when it
// could not be created (the constructor fails the test then).
class TempDir {
public:
  explicit TempDir(const std::string &prefix = "ta-capture") {
    std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
    if (::mkdtemp(tmpl.data()) != nullptr) {
      path_ = tmpl;
    } else {
      ADD_FAILURE() << "mkdtemp failed for " << tmpl;
    }
  }
  ~TempDir() {
    if (!path_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(path_, ec);
    }
  }
  TempDir(const TempDir &) = delete;
  TempDir &operator=(const TempDir &) = delete;

  [[nodiscard]] const std::string &path() const { return path_; }
  // path() + "/" + name
  [[nodiscard]] std::string operator/(const std::string &name) const { return path_ + "/" + name; }

private:
  std::string path_;
};

// Error messages are one line: not empty, no newline.
inline bool one_line(const std::string &s) {
  return !s.empty() && s.find('\n') == std::string::npos;
}

// ASSERT_TRUE(is_ok(st)) fails with the Status's code and message.
inline ::testing::AssertionResult is_ok(const Status &st) {
  if (st.ok()) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << status_code_name(st.code()) << ": " << st.message();
}

} // namespace ta::capture::test
