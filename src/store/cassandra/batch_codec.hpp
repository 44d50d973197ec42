// store/batch_codec: a Batch as bytes, for the Cassandra backend's durable
// spool (private to ta_store_cassandra). The spool file may be damaged (disk errors,
// a copy from another version): decode() trusts nothing and names what is
// wrong instead of reading past the end.
//
// Format, all integers big-endian:
//   "TAB3"                     magic and version
//   source_id [i64] frames_through [u64] source_complete [u8]
//   n [u32] then n x ( len [u32] name [len bytes] )        endpoints
//   n [u32] then n x ( ts_us [i64] frame [u64] address port [u16]
//                      protocol [u8] bytes [u32] endpoint [u32]
//                      direction [u8] source [u8] flow [u32] )  packets
//   n [u32] then n x ( origin_source [i64] first_frame [u64] protocol [u8]
//                      client=address client_port [u16]
//                      endpoint=address endpoint_port [u16] name [u32]
//                      source [u8] sent_packets [u64] sent_bytes [u64]
//                      received_packets [u64] received_bytes [u64]
//                      first_seen [i64] last_seen [i64]
//                      pid [u32] len [u32] program [len bytes] )  flows
//   n [u32] then n x ( address name [u32] when [i64] )     learnt
//   n [u32] then n x ( address )                           local hosts
// where address = family [u8] (4 or 6) followed by 4 or 16 bytes.
//
// "TAB2" (spooled before programs) is the same without the flows' pid and
// program; it still decodes, as flows of no known program.
// "TAB1" (spooled before flow naming) is the same without the packets'
// direction, source and flow and without the flows section; it still
// decodes, as sent packets named by no source outside any flow.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "ta/common/byte_cursor.hpp"
#include "ta/store/store.hpp"

namespace ta::store::detail {

// Appends the encoding of `batch` to `out` (cleared first).
void encode_batch(const Batch &batch, std::vector<std::byte> &out);

// Replaces `batch` with the decoded bytes; false and a one-line `error` when
// the bytes are not a whole, valid encoding (trailing bytes included).
[[nodiscard]] bool decode_batch(Bytes data, Batch &batch, std::string &error);

} // namespace ta::store::detail
