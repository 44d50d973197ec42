// store/open: --store SPEC -> a backend. SPEC is "none", "sqlite:PATH", or a
// bare PATH (SQLite).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "ta/store/store.hpp"

namespace ta::store {

[[nodiscard]] std::unique_ptr<Store> open_store(std::string_view spec, std::string &error);

} // namespace ta::store
