// Private to ta_flow: the seam between the flow table and the first-bytes
// parsers (TLS ClientHello, HTTP/1.x request, QUIC Initial). The table owns
// flows, sequence order and the wait; a namer only looks at bytes. One namer
// object serves one waiting flow and is pooled (reset() between flows), so a
// namer may keep buffers whose capacity survives reuse.
//
// naming.cpp binds the real parsers; tests bind fakes through the same
// interface.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "ta/common/byte_cursor.hpp"
#include "ta/flow/flow.hpp"
#include "ta/store/store.hpp"

namespace ta::flow::detail {

struct NameStep {
  enum class Kind : std::uint8_t { need_more, named, unnamed };
  Kind kind = Kind::need_more;
  store::NameSource source = store::NameSource::none; // when named
  NamingOutcome outcome = NamingOutcome::count_;      // when final (count_: none to count)
};

// The client's first payload bytes of a TCP flow, fed in sequence order, each
// call continuing where the previous one stopped. A final step (named or
// unnamed) ends the feeding.
class StreamNamer {
public:
  StreamNamer() = default;
  virtual ~StreamNamer() = default;
  StreamNamer(const StreamNamer &) = delete;
  StreamNamer &operator=(const StreamNamer &) = delete;
  StreamNamer(StreamNamer &&) = delete;
  StreamNamer &operator=(StreamNamer &&) = delete;

  virtual void reset() noexcept = 0;
  // On `named`, `name` holds the normalised name (lower-case, no trailing dot).
  virtual NameStep feed(Bytes in_order, std::string &name) noexcept = 0;
};

// The client's UDP datagrams, in arrival order.
class DatagramNamer {
public:
  DatagramNamer() = default;
  virtual ~DatagramNamer() = default;
  DatagramNamer(const DatagramNamer &) = delete;
  DatagramNamer &operator=(const DatagramNamer &) = delete;
  DatagramNamer(DatagramNamer &&) = delete;
  DatagramNamer &operator=(DatagramNamer &&) = delete;

  virtual void reset() noexcept = 0;
  virtual NameStep feed(Bytes datagram, std::string &name) noexcept = 0;
  // Adds this flow's per-packet parser failures (quic::PacketError order),
  // called once when the flow's wait ends.
  virtual void take_errors(std::span<std::uint64_t, kQuicPacketErrors> /*out*/) noexcept {}
};

class NamingFactory {
public:
  NamingFactory() = default;
  virtual ~NamingFactory() = default;
  NamingFactory(const NamingFactory &) = delete;
  NamingFactory &operator=(const NamingFactory &) = delete;
  NamingFactory(NamingFactory &&) = delete;
  NamingFactory &operator=(NamingFactory &&) = delete;

  // `max_first_payload`: the bound on a TCP flow's joined first bytes.
  [[nodiscard]] virtual std::unique_ptr<StreamNamer> stream(std::size_t max_first_payload) = 0;
  [[nodiscard]] virtual std::unique_ptr<DatagramNamer> datagram() = 0;
};

// The real parsers (naming.cpp).
[[nodiscard]] std::unique_ptr<NamingFactory> parser_naming();

} // namespace ta::flow::detail
