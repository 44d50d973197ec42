// Private to ta_flow: the pool index and recency list of its bounded tables,
// from ta_common (ta/common/flat_index.hpp), under this library's names.
#pragma once

#include "ta/common/flat_index.hpp"

namespace ta::flow::detail {

using flat::FlatIndex;
using flat::kNil;
using flat::LruList;
using flat::same_address;

} // namespace ta::flow::detail
