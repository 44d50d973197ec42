// Test helpers of the flow unit tests: packet builders, a recording sink, a
// fake naming seam (so table rules are tested without the parsers), a capture
// replayer (real captures through decode into a Table) and the hex of a real
// ClientHello.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ta/capture/capture.hpp"
#include "ta/common/address.hpp"
#include "ta/decode/decode.hpp"
#include "ta/flow/flow.hpp"
#include "ta/testing/bytes.hpp"

#include "naming.hpp"

namespace ta::flow::test {

inline IpAddress ip(std::string_view text) {
  return *IpAddress::parse(text);
}

using ta::testing::bytes;
using ta::testing::hex;

// Builds packets; payload storage lives in the builder's packet list, so a
// Packet stays valid as long as the Builder.
struct Pkt {
  Packet p;
  std::shared_ptr<std::vector<std::byte>> data;
};

inline Pkt tcp(std::string_view src, std::uint16_t sport, std::string_view dst, std::uint16_t dport,
               std::uint8_t flags, std::uint32_t seq = 0, std::vector<std::byte> payload = {}) {
  Pkt k;
  k.data = std::make_shared<std::vector<std::byte>>(std::move(payload));
  k.p.src = ip(src);
  k.p.dst = ip(dst);
  k.p.sport = sport;
  k.p.dport = dport;
  k.p.protocol = kTcp;
  k.p.tcp_flags = flags;
  k.p.tcp_seq = seq;
  k.p.payload = *k.data;
  k.p.ip_bytes = 40 + static_cast<std::uint32_t>(k.data->size());
  return k;
}

inline Pkt udp(std::string_view src, std::uint16_t sport, std::string_view dst, std::uint16_t dport,
               std::vector<std::byte> payload = {}) {
  Pkt k = tcp(src, sport, dst, dport, 0, 0, std::move(payload));
  k.p.protocol = kUdp;
  k.p.ip_bytes = 28 + static_cast<std::uint32_t>(k.data->size());
  return k;
}

struct Seen {
  std::uint64_t frame = 0;
  store::Direction direction = store::Direction::sent;
  std::string name;
  store::NameSource source = store::NameSource::none;
  IpAddress client;
  std::uint16_t client_port = 0;
  IpAddress endpoint;
  std::uint16_t endpoint_port = 0;
  std::uint64_t first_frame = 0;
  std::int64_t origin_source = 0;
};

// A Table plus what it emitted, with frames numbered by the helper.
struct Harness {
  std::vector<Seen> out;
  std::map<std::pair<std::string, std::string>, std::string> dns; // (client, endpoint) -> name
  std::map<std::string, std::string> dns_any;                     // endpoint -> name
  int dns_calls = 0;
  std::unique_ptr<Table> table;
  std::uint64_t frame = 0;
  TimeUs now = 1'000'000;

  explicit Harness(Options o = {}, std::unique_ptr<detail::NamingFactory> naming = nullptr);

  // Feeds at the harness clock (advanced by `dt` first); returns the frame.
  std::uint64_t feed(Pkt k, TimeUs dt = 1, bool record = true) {
    now += dt;
    k.p.ts = now;
    k.p.frame = frame++;
    k.p.record = record;
    table->on_packet(k.p);
    return k.p.frame;
  }
  [[nodiscard]] std::vector<std::uint64_t> frames() const {
    std::vector<std::uint64_t> f;
    for (const auto &s : out) {
      f.push_back(s.frame);
    }
    return f;
  }
};

// The fake seam. TCP: the client's bytes are collected until a '\n'; the line
// "sni:NAME" names by sni, "http:NAME" by http, anything else is unnamed.
// UDP: a datagram "quic:NAME" names by quic, "wait" needs more, anything else
// is unnamed. Every byte string a stream saw is recorded.
struct FakeLog {
  std::vector<std::string> streams; // the joined bytes each stream namer saw
};

class FakeStream final : public detail::StreamNamer {
public:
  explicit FakeStream(std::shared_ptr<FakeLog> log) : log_(std::move(log)) {}
  void reset() noexcept override { slot_ = -1; }
  detail::NameStep feed(Bytes in, std::string &name) noexcept override {
    if (slot_ < 0) {
      slot_ = static_cast<int>(log_->streams.size());
      log_->streams.emplace_back();
    }
    std::string &s = log_->streams[static_cast<std::size_t>(slot_)];
    for (const std::byte b : in) {
      s.push_back(static_cast<char>(b));
    }
    const auto nl = s.find('\n');
    if (nl == std::string::npos) {
      return {};
    }
    const std::string line = s.substr(0, nl);
    if (line.rfind("sni:", 0) == 0) {
      name = line.substr(4);
      return {detail::NameStep::Kind::named, store::NameSource::sni, NamingOutcome::tls_sni};
    }
    if (line.rfind("http:", 0) == 0) {
      name = line.substr(5);
      return {detail::NameStep::Kind::named, store::NameSource::http, NamingOutcome::http_host};
    }
    return {detail::NameStep::Kind::unnamed, store::NameSource::none, NamingOutcome::http_not_http};
  }

private:
  std::shared_ptr<FakeLog> log_;
  int slot_ = -1;
};

class FakeDatagram final : public detail::DatagramNamer {
public:
  void reset() noexcept override {}
  detail::NameStep feed(Bytes in, std::string &name) noexcept override {
    std::string s;
    for (const std::byte b : in) {
      s.push_back(static_cast<char>(b));
    }
    if (s == "wait") {
      return {};
    }
    if (s.rfind("quic:", 0) == 0) {
      name = s.substr(5);
      return {detail::NameStep::Kind::named, store::NameSource::quic, NamingOutcome::quic_sni};
    }
    return {detail::NameStep::Kind::unnamed, store::NameSource::none, NamingOutcome::quic_not_quic};
  }
};

class FakeNaming final : public detail::NamingFactory {
public:
  explicit FakeNaming(std::shared_ptr<FakeLog> log) : log_(std::move(log)) {}
  std::unique_ptr<detail::StreamNamer> stream(std::size_t /*max*/) override {
    return std::make_unique<FakeStream>(log_);
  }
  std::unique_ptr<detail::DatagramNamer> datagram() override {
    return std::make_unique<FakeDatagram>();
  }

private:
  std::shared_ptr<FakeLog> log_;
};

inline Harness::Harness(Options o, std::unique_ptr<detail::NamingFactory> naming) {
  auto lookup = [this](const IpAddress &client,
                       const IpAddress &endpoint) -> std::optional<std::string_view> {
    ++dns_calls;
    const auto it = dns.find({client.to_string(), endpoint.to_string()});
    if (it != dns.end()) {
      return std::string_view(it->second);
    }
    const auto any = dns_any.find(endpoint.to_string());
    if (any != dns_any.end()) {
      return std::string_view(any->second);
    }
    return std::nullopt;
  };
  auto sink = [this](const Emitted &e) {
    Seen s;
    s.frame = e.frame;
    s.direction = e.direction;
    s.name = e.flow->name;
    s.source = e.flow->source;
    s.client = e.flow->client;
    s.client_port = e.flow->client_port;
    s.endpoint = e.flow->endpoint;
    s.endpoint_port = e.flow->endpoint_port;
    s.first_frame = e.flow->first_frame;
    s.origin_source = e.flow->origin_source;
    out.push_back(std::move(s));
  };
  if (naming) {
    table = std::make_unique<Table>(o, lookup, sink, std::move(naming));
  } else {
    table = std::make_unique<Table>(o, lookup, sink);
  }
}

// A Harness over the fake seam.
inline std::unique_ptr<Harness> fake(Options o = {}, std::shared_ptr<FakeLog> log = nullptr) {
  if (!log) {
    log = std::make_shared<FakeLog>();
  }
  return std::make_unique<Harness>(o, std::make_unique<FakeNaming>(log));
}

// Replays a capture (tests/data/NAME) through decode into `h`'s table with
// the real parsers: every TCP/UDP packet that is not DNS (neither port 53),
// no local hosts known, frames numbered from 0, then release_all().
inline void replay(Harness &h, const std::string &name) {
  auto reader = capture::FileReader::open(std::string(TA_TEST_DATA_DIR) + "/" + name);
  if (!reader) {
    throw std::runtime_error(reader.status().message());
  }
  const auto link = static_cast<decode::LinkType>((*reader)->link_type());
  capture::Frame f;
  std::uint64_t index = 0;
  while ((*reader)->next(f) == capture::ReadStatus::frame) {
    const std::uint64_t frame = index++;
    decode::PacketView v;
    if (decode::decode_packet(link, f.data, v) != decode::DecodeError::ok || !v.has_ports ||
        (v.protocol != kTcp && v.protocol != kUdp) || v.src_port == 53 || v.dst_port == 53) {
      continue;
    }
    Packet p;
    p.ts = f.ts_us;
    p.frame = frame;
    p.src = v.src;
    p.dst = v.dst;
    p.sport = v.src_port;
    p.dport = v.dst_port;
    p.protocol = v.protocol;
    p.tcp_flags = v.tcp_flags;
    p.tcp_seq = v.tcp_seq;
    p.payload = v.payload;
    p.ip_bytes = v.ip_length;
    h.table->on_packet(p);
  }
  h.table->release_all();
}

// The first TLS record of frame 4 of ndpi_chrome.pcap (tshark -e tcp.payload;
// 517 bytes, tls.handshake.extensions_server_name "www.iit.cnr.it").
inline std::vector<std::byte> chrome_client_hello() {
  return hex("1603010200010001fc0303d77aa0f252cff8ff81a9c82edc42621f8c80d83b0322361c96ae2f2bda7849c"
             "e207094dfde"
             "2fae965e90337a4b4c5c840b86caabaca5ab87a6e290440145ae762900209a9a130313011302cca9cca8c"
             "02bc02fc02c"
             "c030c013c014009c009d002f0035010001934a4a000000000013001100000e7777772e6969742e636e722"
             "e6974001700"
             "00ff01000100000a000a00086a6a001d00170018000b00020100002300000010000e000c0268320868747"
             "4702f312e31"
             "000500050100000000000d0012001004030804040105030805050108060601001200000033002b00296a6"
             "a000100001d"
             "00203af18d95cb86205f04c0a3e2b8c68b9026c6a90ef630fe20a68d31ea2525b648002d00020101002b0"
             "00b0a6a6a03"
             "04030303020301001b00030200024469000500030268326a6a000100001500c5000000000000000000000"
             "00000000000"
             "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
             "00000000000"
             "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
             "00000000000"
             "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
             "00000000000"
             "00000000000000000000000000000000000000000000000000000000000000000000000000");
}

} // namespace ta::flow::test
