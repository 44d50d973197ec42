// The real parsers behind the naming seam (naming.hpp):
//  - TCP: the client's first payload byte picks the parser. 0x16 is the TLS
//    record ContentType handshake (RFC 8446 5.1): the record layer is stripped
//    by tls::ClientHelloAssembler and the ClientHello's server_name read
//    (RFC 6066 3). Anything else is tried as an HTTP/1.x request (RFC 9112 3)
//    for its Host header (RFC 9110 7.2); 0x16 is not a token character, so no
//    request line starts with it.
//  - UDP: every client datagram goes to the QUIC Initial parser until it gives
//    a final answer.
// Names are normalised (ta/common/hostname.hpp); one that normalises to
// nothing is no name.
#include "naming.hpp"

#include <algorithm>
#include <span>
#include <vector>

#include "ta/common/hostname.hpp"
#include "ta/http/http.hpp"
#include "ta/quic/quic.hpp"
#include "ta/tls/tls.hpp"

namespace ta::flow::detail {
namespace {

using Kind = NameStep::Kind;

NameStep unnamed(NamingOutcome o) noexcept {
  return {Kind::unnamed, store::NameSource::none, o};
}

NameStep named_or(Bytes raw, std::string &name, store::NameSource source, NamingOutcome ok,
                  NamingOutcome empty) noexcept {
  normalize_hostname(raw, name);
  if (name.empty()) {
    return unnamed(empty);
  }
  return {Kind::named, source, ok};
}

NameStep from_tls(const tls::ClientHelloResult &r, std::string &name) noexcept {
  switch (r.status) {
  case tls::ClientHelloStatus::ok:
    return named_or(r.server_name, name, store::NameSource::sni, NamingOutcome::tls_sni,
                    NamingOutcome::tls_empty_name);
  case tls::ClientHelloStatus::need_more:
    return {};
  case tls::ClientHelloStatus::no_sni:
    return unnamed(NamingOutcome::tls_no_sni);
  case tls::ClientHelloStatus::not_client_hello:
    return unnamed(NamingOutcome::tls_not_client_hello);
  case tls::ClientHelloStatus::too_large:
    return unnamed(NamingOutcome::tls_too_large);
  case tls::ClientHelloStatus::truncated:
    return unnamed(NamingOutcome::tls_truncated);
  case tls::ClientHelloStatus::bad_length:
    return unnamed(NamingOutcome::tls_bad_length);
  case tls::ClientHelloStatus::bad_extension:
    return unnamed(NamingOutcome::tls_bad_extension);
  case tls::ClientHelloStatus::not_tls:
    return unnamed(NamingOutcome::tls_not_tls);
  case tls::ClientHelloStatus::bad_record:
  case tls::ClientHelloStatus::count_:
    break;
  }
  return unnamed(NamingOutcome::tls_bad_record);
}

NameStep from_http(const http::HostResult &r, std::string &name) noexcept {
  switch (r.status) {
  case http::HostStatus::ok:
    return named_or(r.host, name, store::NameSource::http, NamingOutcome::http_host,
                    NamingOutcome::http_no_host);
  case http::HostStatus::need_more:
    return {};
  case http::HostStatus::not_http:
    return unnamed(NamingOutcome::http_not_http);
  case http::HostStatus::no_host:
    return unnamed(NamingOutcome::http_no_host);
  case http::HostStatus::too_large:
    return unnamed(NamingOutcome::http_too_large);
  case http::HostStatus::malformed:
  case http::HostStatus::count_:
    break;
  }
  return unnamed(NamingOutcome::http_malformed);
}

class ParserStream final : public StreamNamer {
public:
  explicit ParserStream(std::size_t max_first_payload) : max_(max_first_payload) {}

  void reset() noexcept override {
    mode_ = Mode::unknown;
    assembler_.reset();
    joined_.clear();
  }

  NameStep feed(Bytes in_order, std::string &name) noexcept override {
    if (in_order.empty()) {
      return {};
    }
    if (mode_ == Mode::unknown) {
      mode_ = std::to_integer<std::uint8_t>(in_order[0]) == 0x16 ? Mode::tls : Mode::http;
    }
    if (mode_ == Mode::tls) {
      if (assembler_.feed(in_order) == tls::AssemblerState::need_more) {
        return {};
      }
      return from_tls(assembler_.result(), name);
    }
    // HTTP reads the whole prefix: straight from the segment when the request
    // head is in the first one (the common case), else from a copy.
    const bool first = joined_.empty();
    if (first) {
      const NameStep step = from_http(http::parse_request_host(in_order), name);
      if (step.kind != Kind::need_more) {
        return step;
      }
    }
    const std::size_t room = max_ - std::min(max_, joined_.size());
    const std::size_t take = std::min(room, in_order.size());
    joined_.insert(joined_.end(), in_order.begin(), in_order.begin() + static_cast<long>(take));
    if (first && take == in_order.size()) {
      // Parsed whole above: need_more, unless the bound is reached.
      return joined_.size() >= max_ ? unnamed(NamingOutcome::http_too_large) : NameStep{};
    }
    const NameStep step = from_http(http::parse_request_host(joined_), name);
    if (step.kind == Kind::need_more && joined_.size() >= max_) {
      return unnamed(NamingOutcome::http_too_large);
    }
    return step;
  }

private:
  enum class Mode : std::uint8_t { unknown, tls, http };
  std::size_t max_;
  Mode mode_ = Mode::unknown;
  tls::ClientHelloAssembler assembler_;
  std::vector<std::byte> joined_; // capacity kept across flows
};

class QuicDatagrams final : public DatagramNamer {
public:
  void reset() noexcept override { parser_.reset(); }

  NameStep feed(Bytes datagram, std::string &name) noexcept override {
    const quic::FeedResult r = parser_.feed(datagram);
    switch (r.outcome) {
    case quic::Outcome::need_more:
      return {};
    case quic::Outcome::sni:
      return named_or(std::as_bytes(std::span(r.sni.data(), r.sni.size())), name,
                      store::NameSource::quic, NamingOutcome::quic_sni, NamingOutcome::quic_no_sni);
    case quic::Outcome::no_sni:
      return unnamed(NamingOutcome::quic_no_sni);
    case quic::Outcome::unsupported_version:
      return unnamed(NamingOutcome::quic_unsupported_version);
    case quic::Outcome::not_quic:
      break;
    }
    return unnamed(NamingOutcome::quic_not_quic);
  }

  void take_errors(std::span<std::uint64_t, kQuicPacketErrors> out) noexcept override {
    const quic::InitialStats &st = parser_.stats();
    for (std::size_t i = 0; i < kQuicPacketErrors; ++i) {
      out[i] += st.errors[i];
    }
  }

private:
  quic::InitialParser parser_;
};

class ParserFactory final : public NamingFactory {
public:
  std::unique_ptr<StreamNamer> stream(std::size_t max_first_payload) override {
    return std::make_unique<ParserStream>(max_first_payload);
  }
  std::unique_ptr<DatagramNamer> datagram() override { return std::make_unique<QuicDatagrams>(); }
};

static_assert(kQuicPacketErrors == static_cast<std::size_t>(quic::PacketError::count_),
              "flow::kQuicPacketErrors follows quic::PacketError");

} // namespace

std::unique_ptr<NamingFactory> parser_naming() {
  return std::make_unique<ParserFactory>();
}

} // namespace ta::flow::detail

namespace ta::flow {

std::string_view quic_packet_error_name(std::size_t index) noexcept {
  if (index >= kQuicPacketErrors) {
    return "unknown";
  }
  return quic::packet_error_name(static_cast<quic::PacketError>(index));
}

} // namespace ta::flow
