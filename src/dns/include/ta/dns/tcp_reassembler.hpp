// dns/tcp_reassembler: DNS over TCP (RFC 1035 §4.2.2, RFC 7766): each message
// is preceded by a 2-byte length; a message may span segments and a segment
// may carry several messages. Segments are taken in sequence order per
// connection direction; a gap (lost or out-of-order segment) drops that
// direction's partial message and resynchronises at the next SYN, or never
// (counted). Retransmitted bytes already consumed are skipped.
//
// Memory is bounded: at most max_flows directions are tracked (oldest evicted,
// counted) and at most max_buffered_bytes of partial messages are held in all.
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
  std::uint64_t messages = 0;        // complete messages delivered
  std::uint64_t gaps = 0;            // sequence gaps that dropped a partial message
  std::uint64_t flows_evicted = 0;   // directions dropped by the flow bound
  std::uint64_t bytes_dropped = 0;   // partial-message bytes thrown away (gaps, evictions, FIN/RST)
  std::uint64_t oversize = 0;        // partial data over the buffer bound, dropped
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
