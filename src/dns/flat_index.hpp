// Private to ta_dns: the pool index and recency list of its bounded tables,
// from ta_common (ta/common/flat_index.hpp), under this library's names.
#pragma once

#include "ta/common/flat_index.hpp"

namespace ta::dns::detail {

using flat::FlatIndex;
using flat::kNil;
using flat::LruList;
using flat::same_address;

} // namespace ta::dns::detail
