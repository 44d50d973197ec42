// The fake server's cluster (fake_server.hpp): the rows it answers for
// system.local, system.peers_v2, system.peers and system_schema.keyspaces,
// and the EVENT bodies it pushes. Types are the server's: inet 0x0010, int
// 0x0009, uuid 0x000C, varchar 0x000D, set<text> 0x0022 0x000D,
// map<text, text> 0x0021 0x000D 0x000D; collections are [int n] then their
// elements as [bytes].
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "ta/common/address.hpp"
#include "ta/cql/messages.hpp"

namespace ta::cql::test {

inline std::vector<std::byte> to_bytes(std::string_view s) {
  const auto *p = reinterpret_cast<const std::byte *>(s.data());
  return {p, p + s.size()};
}

// system.local / system.peers_v2 / system.peers as a fake node describes
// its cluster. Cells are given as text: address "" is null and "bad" is a
// 3-byte inet; uuids are 32 hex digits ("" null).
struct NodeRowSpec {
  std::string address; // rpc_address / native_address
  std::uint16_t port = 0;
  std::string host_id;
  std::string data_center = "dc1";
  std::string rack = "rack1";
  std::vector<std::string> tokens;
  std::string schema_version = "5c4e0000000000000000000000000001";
};
struct ClusterSpec {
  NodeRowSpec local;
  std::vector<NodeRowSpec> peers;
  bool peers_v2 = true;            // false: "unconfigured table peers_v2" (Cassandra 3)
  bool local_unauthorized = false; // system.local answers 0x2100 Unauthorized
  // system_schema.keyspaces: the one keyspace and its replication map.
  std::string keyspace = "ks";
  std::vector<std::pair<std::string, std::string>> replication = {
      {"class", "org.apache.cassandra.locator.SimpleStrategy"}, {"replication_factor", "1"}};
};

// Rows of system_schema.keyspaces' replication column (map<text, text>).
inline std::vector<std::byte>
replication_rows_body(const std::vector<std::pair<std::string, std::string>> *replication) {
  std::vector<std::byte> b;
  BodyWriter w(b);
  w.put_int(2);
  w.put_int(0x0001);
  w.put_int(1);
  w.put_string("system_schema");
  w.put_string("keyspaces");
  w.put_string("replication");
  w.put_short(0x0021); // map<text, text>
  w.put_short(0x000D);
  w.put_short(0x000D);
  w.put_int(replication != nullptr ? 1 : 0);
  if (replication != nullptr) {
    std::vector<std::byte> map;
    BodyWriter mw(map);
    mw.put_int(static_cast<std::int32_t>(replication->size()));
    for (const auto &[k, v] : *replication) {
      mw.put_bytes(to_bytes(k));
      mw.put_bytes(to_bytes(v));
    }
    w.put_bytes(map);
  }
  return b;
}

inline std::vector<std::byte> hex_bytes(std::string_view hex) {
  std::vector<std::byte> out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    while (i < hex.size() && hex[i] == ' ') {
      ++i;
    }
    out.push_back(static_cast<std::byte>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

inline void put_inet_cell(BodyWriter &w, const std::string &address) {
  if (address.empty()) {
    w.put_null_bytes();
    return;
  }
  if (address == "bad") {
    w.put_bytes(hex_bytes("7f 00 01"));
    return;
  }
  const auto ip = IpAddress::parse(address);
  EXPECT_TRUE(ip.has_value()) << address;
  std::vector<std::byte> b;
  for (std::size_t i = 0; ip && i < ip->length(); ++i) {
    b.push_back(static_cast<std::byte>(ip->bytes[i]));
  }
  w.put_bytes(b);
}

inline void put_uuid_cell(BodyWriter &w, const std::string &hex) {
  if (hex.empty()) {
    w.put_null_bytes();
  } else {
    w.put_bytes(hex_bytes(hex));
  }
}

// A Rows body for one of the three tables ("local", "peers_v2", "peers").
inline std::vector<std::byte> system_rows_body(std::string_view table,
                                               const std::vector<NodeRowSpec> &rows) {
  enum Col { peer, peer_port, host_id, dc, rack, tokens, schema, rpc, native, native_port };
  std::vector<std::pair<std::string, Col>> cols;
  if (table == "local") {
    cols = {{"host_id", host_id}, {"data_center", dc},        {"rack", rack},
            {"tokens", tokens},   {"schema_version", schema}, {"rpc_address", rpc}};
  } else if (table == "peers_v2") {
    cols = {{"peer", peer},
            {"peer_port", peer_port},
            {"host_id", host_id},
            {"data_center", dc},
            {"rack", rack},
            {"tokens", tokens},
            {"schema_version", schema},
            {"native_address", native},
            {"native_port", native_port}};
  } else {
    cols = {{"peer", peer},     {"host_id", host_id},       {"data_center", dc}, {"rack", rack},
            {"tokens", tokens}, {"schema_version", schema}, {"rpc_address", rpc}};
  }
  std::vector<std::byte> b;
  BodyWriter w(b);
  w.put_int(2);
  w.put_int(0x0001);
  w.put_int(static_cast<std::int32_t>(cols.size()));
  w.put_string("system");
  w.put_string(table);
  for (const auto &[name, col] : cols) {
    w.put_string(name);
    switch (col) {
    case peer:
    case rpc:
    case native:
      w.put_short(0x0010);
      break;
    case peer_port:
    case native_port:
      w.put_short(0x0009);
      break;
    case host_id:
    case schema:
      w.put_short(0x000C);
      break;
    case dc:
    case rack:
      w.put_short(0x000D);
      break;
    case tokens:
      w.put_short(0x0022); // set<text>
      w.put_short(0x000D);
      break;
    }
  }
  w.put_int(static_cast<std::int32_t>(rows.size()));
  for (const auto &r : rows) {
    for (const auto &[name, col] : cols) {
      switch (col) {
      case peer:
      case rpc:
      case native:
        put_inet_cell(w, r.address);
        break;
      case peer_port:
        w.put_int(4);
        w.put_int(7000);
        break;
      case native_port:
        w.put_int(4);
        w.put_int(r.port);
        break;
      case host_id:
        put_uuid_cell(w, r.host_id);
        break;
      case schema:
        put_uuid_cell(w, r.schema_version);
        break;
      case dc:
        w.put_bytes(to_bytes(r.data_center));
        break;
      case rack:
        w.put_bytes(to_bytes(r.rack));
        break;
      case tokens: {
        std::vector<std::byte> set;
        BodyWriter sw(set);
        sw.put_int(static_cast<std::int32_t>(r.tokens.size()));
        for (const auto &t : r.tokens) {
          sw.put_bytes(to_bytes(t));
        }
        w.put_bytes(set);
        break;
      }
      }
    }
  }
  return b;
}

// An EVENT body: TOPOLOGY_CHANGE / STATUS_CHANGE <change><inet>.
inline std::vector<std::byte> event_body(std::string_view type, std::string_view change,
                                         std::string_view address, std::int32_t port) {
  std::vector<std::byte> b;
  BodyWriter w(b);
  w.put_string(type);
  w.put_string(change);
  const auto ip = IpAddress::parse(address);
  EXPECT_TRUE(ip.has_value()) << address;
  w.put_byte(static_cast<std::uint8_t>(ip ? ip->length() : 0));
  for (std::size_t i = 0; ip && i < ip->length(); ++i) {
    w.put_byte(ip->bytes[i]);
  }
  w.put_int(port);
  return b;
}

} // namespace ta::cql::test
