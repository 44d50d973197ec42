// store/open: --store SPEC -> a backend. SPEC is "none", "cassandra://...",
// "sqlite:PATH", or a bare PATH (SQLite).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "ta/store/cassandra_store.hpp"
#include "ta/store/store.hpp"

namespace ta::store {

[[nodiscard]] std::unique_ptr<Store> open_store(std::string_view spec, std::string &error);
// `cassandra` applies only to cassandra:// specs.
[[nodiscard]] std::unique_ptr<Store>
open_store(std::string_view spec, const CassandraOptions &cassandra, std::string &error);

} // namespace ta::store
