// Private to ta_flow: joins the client's first payload bytes of one TCP flow
// in sequence order, for naming only (nothing here is a general reassembler).
//
// The stream starts at ISN + 1 when the client's SYN was seen (RFC 9293 3.4:
// the SYN occupies one sequence number; data carried on the SYN itself starts
// there too), else at the first payload segment seen. Sequence numbers compare
// in serial arithmetic (RFC 1982), so the wrap at 2^32 is harmless. Bytes
// before the next expected one (retransmits, overlaps) are trimmed. A segment
// past a hole is kept in a window of `window` bytes from the stream start, and
// handed on once the hole is filled; beyond the window, or when the caller's
// byte budget refuses, it is dropped and the hole stays open for good.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "ta/common/byte_cursor.hpp"

namespace ta::flow::detail {

class TcpJoin {
public:
  void reset() noexcept {
    started_ = false;
    base_ = 0;
    next_rel_ = 0;
    ranges_.clear();
    // buffer_ keeps its capacity for the next flow.
  }

  [[nodiscard]] bool started() const noexcept { return started_; }
  // Out-of-order bytes wait behind a hole.
  [[nodiscard]] bool gap_open() const noexcept { return !ranges_.empty(); }
  // Bytes held out of order now (the caller's budget counts them).
  [[nodiscard]] std::size_t held_bytes() const noexcept {
    std::size_t n = 0;
    for (const auto &r : ranges_) {
      n += r.end - r.begin;
    }
    return n;
  }

  // The client's SYN: the stream starts after it. Ignored once started.
  void syn(std::uint32_t seq) noexcept {
    if (!started_) {
      started_ = true;
      base_ = seq + 1U;
      next_rel_ = 0;
    }
  }

  enum class Fed : std::uint8_t { ok, dropped };

  // One client segment's payload starting at `seq`. `deliver(Bytes)` receives
  // in-order bytes and returns false to stop (the flow got its name).
  // `budget(n)` returns whether n more out-of-order bytes may be held.
  template <class Deliver, class Budget>
  Fed feed(std::uint32_t seq, Bytes payload, std::size_t window, Deliver &&deliver,
           Budget &&budget) {
    if (payload.empty()) {
      return Fed::ok;
    }
    if (!started_) {
      started_ = true;
      base_ = seq;
      next_rel_ = 0;
    }
    // Offset of the segment from the stream start, serial arithmetic; a
    // segment from before the start (negative) is a retransmit of nothing we
    // want.
    const auto rel = static_cast<std::int32_t>(seq - base_);
    const std::int64_t begin = rel;
    const std::int64_t end = begin + static_cast<std::int64_t>(payload.size());
    if (end <= static_cast<std::int64_t>(next_rel_)) {
      return Fed::ok; // all old
    }
    if (begin <= static_cast<std::int64_t>(next_rel_)) {
      const auto skip = static_cast<std::size_t>(static_cast<std::int64_t>(next_rel_) - begin);
      next_rel_ = static_cast<std::uint32_t>(end);
      if (!deliver(payload.subspan(skip))) {
        return Fed::ok;
      }
      drain(deliver);
      return Fed::ok;
    }
    // Past a hole: keep what fits in the window.
    if (static_cast<std::uint64_t>(end) > window) {
      return Fed::dropped;
    }
    const auto b = static_cast<std::uint32_t>(begin);
    const auto e = static_cast<std::uint32_t>(end);
    if (!budget(e - b)) {
      return Fed::dropped;
    }
    if (buffer_.size() < window) {
      buffer_.resize(window);
    }
    std::memcpy(buffer_.data() + b, payload.data(), payload.size());
    add_range(b, e);
    return Fed::ok;
  }

private:
  struct Range {
    std::uint32_t begin;
    std::uint32_t end;
  };

  void add_range(std::uint32_t b, std::uint32_t e) {
    ranges_.push_back({b, e});
    std::sort(ranges_.begin(), ranges_.end(),
              [](const Range &x, const Range &y) { return x.begin < y.begin; });
    // Merge overlapping or touching ranges (the bytes are the same stream).
    std::size_t out = 0;
    for (std::size_t i = 1; i < ranges_.size(); ++i) {
      if (ranges_[i].begin <= ranges_[out].end) {
        ranges_[out].end = std::max(ranges_[out].end, ranges_[i].end);
      } else {
        ranges_[++out] = ranges_[i];
      }
    }
    ranges_.resize(out + 1);
  }

  template <class Deliver> void drain(Deliver &deliver) {
    while (!ranges_.empty() && ranges_.front().begin <= next_rel_) {
      const Range r = ranges_.front();
      ranges_.erase(ranges_.begin());
      if (r.end > next_rel_) {
        const Bytes bytes{buffer_.data() + next_rel_, r.end - next_rel_};
        next_rel_ = r.end;
        if (!deliver(bytes)) {
          return;
        }
      }
    }
  }

  bool started_ = false;
  std::uint32_t base_ = 0;     // sequence number of stream byte 0
  std::uint32_t next_rel_ = 0; // next stream offset expected in order
  std::vector<Range> ranges_;  // held out-of-order bytes, sorted, disjoint
  std::vector<std::byte> buffer_;
};

} // namespace ta::flow::detail
