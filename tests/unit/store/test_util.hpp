// Shared helpers of the store tests: a temporary folder per test and the
// step from a Result to the (pointer, error text) the assertions read.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <utility>

#include <gtest/gtest.h>

#include "ta/common/status.hpp"

namespace ta::store::test {

// A fresh folder under the system's temporary directory, removed with
// everything in it when the object goes.
class TempDir {
public:
  explicit TempDir(const std::string &prefix = "ta-store") {
    std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
    if (mkdtemp(tmpl.data()) == nullptr) {
      ADD_FAILURE() << "mkdtemp " << tmpl;
    }
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir &) = delete;
  TempDir &operator=(const TempDir &) = delete;

  [[nodiscard]] const std::filesystem::path &path() const { return path_; }

private:
  std::filesystem::path path_;
};

// The value of `r`, or a default one (a null pointer) with the failure's
// message in `error`.
template <class T> T take(Result<T> r, std::string &error) {
  if (!r) {
    error = r.status().message();
    return T{};
  }
  return std::move(r).value();
}

} // namespace ta::store::test
