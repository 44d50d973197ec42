// dns/tcp_reassembler: DNS over TCP (RFC 1035 §4.2.2, RFC 7766). Part of
// ta_dns, which links only ta_common.
//
// Each message is preceded by a 2-byte length; a message may span segments and
// a segment may carry several messages. Segments are taken in sequence order
// per connection direction; a gap (lost or out-of-order segment) drops that
// direction's partial message (counted) and resynchronises at the segment after
// the gap, taken to start a new [length][message] unit (true when the lost data
// ended on a message boundary; otherwise what follows is garbage the parser
// rejects). Retransmitted bytes already consumed are skipped. Sequence numbers
// compare in serial arithmetic (wrap at 2^32 is fine).
//
// A direction's expected sequence number comes from the first segment seen:
// ISN + 1 for a SYN, else that segment's seq (a capture joining mid-stream
// assumes the segment starts a unit). A SYN on a known direction starts it
// over. FIN or RST: the segment's complete messages are delivered, then the
// direction is forgotten (its partial message dropped).
//
// Memory is bounded: at most max_flows directions are tracked (least recently
// fed evicted, counted) and at most max_buffered_bytes of partial messages are
// held in all. A message whose body would go over the byte bound is skipped
// (counted as oversize) and the stream resynchronises after it.
//
// Allocation: none for a message whole in one segment (the sink sees the
// payload itself); a message split across segments is copied into a buffer
// of exactly its length, freed once delivered.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "ta/common/address.hpp"
#include "ta/common/byte_cursor.hpp"
#include "ta/common/time.hpp"

namespace ta::dns {

struct TcpFlowKey {
  IpAddress src;
  IpAddress dst;
  std::uint16_t src_port = 0;
  std::uint16_t dst_port = 0;
  friend bool operator==(const TcpFlowKey &, const TcpFlowKey &) = default;
};

struct TcpReassemblerStats {
  std::uint64_t messages = 0;      // complete messages delivered
  std::uint64_t gaps = 0;          // sequence gaps (each drops any partial message)
  std::uint64_t flows_evicted = 0; // directions dropped by the flow bound
  std::uint64_t bytes_dropped = 0; // partial-message bytes thrown away (gaps, evictions,
                                   // FIN/RST, oversize messages' bytes as they are skipped)
  std::uint64_t oversize = 0;      // partial data over the buffer bound, dropped
};

class TcpReassembler {
public:
  struct Limits {
    std::size_t max_flows = 4096;
    std::size_t max_buffered_bytes = 8U << 20U;
  };
  // Called once per complete message; the span is valid only during the call.
  using MessageSink = std::function<void(Bytes message)>;

  TcpReassembler();
  explicit TcpReassembler(Limits limits);
  ~TcpReassembler();
  TcpReassembler(const TcpReassembler &) = delete;
  TcpReassembler &operator=(const TcpReassembler &) = delete;

  // One TCP segment of one direction. `flags` as in decode::PacketView.
  void feed(const TcpFlowKey &key, std::uint32_t seq, std::uint8_t flags, Bytes payload,
            const MessageSink &sink);

  [[nodiscard]] const TcpReassemblerStats &stats() const noexcept;
  [[nodiscard]] std::size_t flow_count() const noexcept;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace ta::dns
