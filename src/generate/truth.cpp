// The two truth models (impl.hpp explains them) and the truth as JSON.
#include <algorithm>

#include <nlohmann/json.hpp>

#include "impl.hpp"

namespace ta::generate {

using detail::Address;
using detail::Aggregate;
using detail::kNone;

void Generator::Impl::learn(std::uint8_t client, bool six, bool rcode_ok,
                            const std::vector<std::uint32_t> *answers, std::int32_t endpoint) {
  // The client received a DNS response: its address of that family is local
  // from here on. Only RCODE 0 answer-section A/AAAA records teach, to the
  // table of everyone and to the table of the client it was sent to.
  (six ? clients[client].local6 : clients[client].local4) = true;
  if (rcode_ok && answers != nullptr) {
    for (const std::uint32_t id : *answers) {
      table_learn(id, endpoint);
      addr[id].taught_to[client] = endpoint;
      client_learn(client, id);
    }
  }
}

void Generator::Impl::table_learn(std::uint32_t id, std::int32_t endpoint) {
  // The table of everyone's answers. Bounded (Options::dns_table_size): an
  // address learnt again becomes the most recently learnt; a new address
  // into a full table evicts the least recently learnt one, which reads as
  // never answered from then on (README "What is counted"). The per-client
  // table of flow naming: client_learn().
  Address &a = addr[id];
  if (opt.dns_table_size > 0) {
    if (a.learnt_at != 0) {
      table_order.erase(a.learnt_at);
    } else if (table_order.size() >= opt.dns_table_size) {
      const auto oldest = table_order.begin();
      addr[oldest->second].taught = detail::kUnresolved;
      addr[oldest->second].learnt_at = 0;
      table_order.erase(oldest);
    }
    a.learnt_at = ++table_clock;
    table_order.emplace(a.learnt_at, id);
  }
  a.taught = endpoint;
}

void Generator::Impl::client_learn(std::uint8_t client, std::uint32_t id) {
  // The table of answers per client, bounded with the table of everyone's
  // (README "What is counted"): 4 client/address pairs per address of
  // --dns-table-size. A pair learnt again becomes the most recently learnt;
  // a new pair into a full table evicts the least recently learnt one, whose
  // client then reads the table of everyone's answers for that address.
  if (opt.dns_table_size == 0) {
    return; // unbounded: the analyzer's 262,144 pairs never fill here
  }
  constexpr std::size_t kPairsPerAddress = 4;
  Address &a = addr[id];
  if (a.client_learnt_at[client] != 0) {
    client_order.erase(a.client_learnt_at[client]);
  } else if (client_order.size() >= kPairsPerAddress * opt.dns_table_size) {
    const auto oldest = client_order.begin();
    addr[oldest->second.first].client_learnt_at[oldest->second.second] = 0;
    client_order.erase(oldest);
  }
  a.client_learnt_at[client] = ++client_clock;
  client_order.emplace(a.client_learnt_at[client], std::make_pair(id, client));
}

void Generator::Impl::count(std::uint8_t client, std::uint32_t dst, bool dns_port) {
  // DNS-only naming. Called for client-sourced frames only. Outbound = the
  // client's address of the frame's family is local; DNS (to/from port 53)
  // never counts.
  detail::Address &a = addr[dst];
  if (dns_port || !is_local(client, a.ip)) {
    return;
  }
  const std::int32_t ep = a.taught;
  detail::Aggregate &g = agg[static_cast<std::size_t>(ep) + 1];
  if (g.packets == 0) {
    g.first = now;
  }
  ++g.packets;
  g.bytes += w.ip_length();
  g.last = now;
  if (a.last_counted != ep) {
    a.last_counted = ep;
    counted.emplace_back(dst, ep);
  }
}

std::uint32_t Generator::Impl::endpoint_flow_id(std::int32_t endpoint) {
  if (endpoint < 0) {
    return 0;
  }
  detail::Endpoint &e = eps[static_cast<std::size_t>(endpoint)];
  if (e.flow_id == kNone) {
    e.flow_id = flow_truth.intern(e.name);
  }
  return e.flow_id;
}

void Generator::Impl::count_flow(Flow &f, bool sent) {
  // Flow naming: every packet of a TCP/UDP flow (DNS excepted), both ways.
  if (f.pending) {
    f.held.add(sent, w.ip_length(), now);
    return;
  }
  flow_truth.count(f.name, f.source, sent, w.ip_length(), now);
}

void Generator::Impl::count_icmp(std::uint8_t client, std::uint32_t dst) {
  // Flow naming leaves other protocols to DNS-only naming: outbound packets
  // only, named by the latest answer to anyone.
  const detail::Address &a = addr[dst];
  if (!is_local(client, a.ip)) {
    return;
  }
  flow_truth.count(endpoint_flow_id(a.taught), a.taught >= 0 ? NameSource::dns : NameSource::none,
                   true, w.ip_length(), now);
}

GroundTruth Generator::Impl::truth() const {
  GroundTruth t;
  t.frames = produced;
  std::vector<std::vector<std::string>> lists(agg.size());
  for (const auto &[id, ep] : counted) {
    lists[static_cast<std::size_t>(ep) + 1].push_back(addr[id].text);
  }
  for (std::size_t slot = 0; slot < agg.size(); ++slot) {
    const Aggregate &g = agg[slot];
    if (g.packets == 0) {
      continue;
    }
    EndpointTruth e;
    e.endpoint = slot == 0 ? std::string() : eps[slot - 1].name;
    e.packets = g.packets;
    e.bytes = g.bytes;
    e.first_seen = g.first;
    e.last_seen = g.last;
    e.addresses = std::move(lists[slot]);
    std::sort(e.addresses.begin(), e.addresses.end());
    e.addresses.erase(std::unique(e.addresses.begin(), e.addresses.end()), e.addresses.end());
    t.endpoints.push_back(std::move(e));
  }
  std::sort(t.endpoints.begin(), t.endpoints.end(),
            [](const EndpointTruth &a, const EndpointTruth &b) { return a.endpoint < b.endpoint; });
  for (const Address &a : addr) {
    if (a.taught >= 0) {
      t.final_addresses.emplace_back(a.text, eps[static_cast<std::size_t>(a.taught)].name);
    }
  }
  std::sort(t.final_addresses.begin(), t.final_addresses.end());
  // Flows still waiting for their ClientHello or request at the end of the
  // input are named by the DNS rule.
  detail::FlowTruth flows_now = flow_truth;
  for (const Flow &f : flows) {
    if (f.kind != detail::FlowKind::none && f.pending) {
      flows_now.add(f.fallback, f.fallback_source, f.held);
    }
  }
  t.flow_endpoints = flows_now.result();
  if (!moved_address.empty()) {
    t.moved_address = moved_address;
    t.moved_from = moved_from >= 0 ? eps[static_cast<std::size_t>(moved_from)].name : "";
    t.moved_to = eps[static_cast<std::size_t>(moved_to)].name;
    t.moved_at = moved_at;
  }
  return t;
}

std::string truth_to_json(const GroundTruth &truth) {
  nlohmann::ordered_json j;
  j["frames"] = truth.frames;
  auto endpoints = nlohmann::ordered_json::array();
  for (const EndpointTruth &e : truth.endpoints) {
    nlohmann::ordered_json o;
    o["endpoint"] = e.endpoint;
    o["packets"] = e.packets;
    o["bytes"] = e.bytes;
    o["first_seen"] = format_rfc3339_us(e.first_seen);
    o["last_seen"] = format_rfc3339_us(e.last_seen);
    o["addresses"] = e.addresses;
    endpoints.push_back(std::move(o));
  }
  j["endpoints"] = std::move(endpoints);
  auto addresses = nlohmann::ordered_json::array();
  for (const auto &[address, name] : truth.final_addresses) {
    nlohmann::ordered_json o;
    o["address"] = address;
    o["name"] = name;
    addresses.push_back(std::move(o));
  }
  j["addresses"] = std::move(addresses);
  auto flow_endpoints = nlohmann::ordered_json::array();
  for (const FlowEndpointTruth &e : truth.flow_endpoints) {
    nlohmann::ordered_json o;
    o["endpoint"] = e.endpoint;
    o["packets"] = e.packets;
    o["bytes"] = e.bytes;
    o["received_packets"] = e.received_packets;
    o["received_bytes"] = e.received_bytes;
    o["first_seen"] = format_rfc3339_us(e.first_seen);
    o["last_seen"] = format_rfc3339_us(e.last_seen);
    nlohmann::ordered_json names;
    for (std::size_t k = 0; k < kNameSources; ++k) {
      names[std::string(name_source_name(static_cast<NameSource>(k)))] = e.names[k];
    }
    o["names"] = std::move(names);
    flow_endpoints.push_back(std::move(o));
  }
  j["flow_endpoints"] = std::move(flow_endpoints);
  return j.dump(2);
}

} // namespace ta::generate
