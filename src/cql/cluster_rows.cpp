#include "cluster_rows.hpp"

#include <array>
#include <charconv>
#include <string_view>

#include "ta/common/byte_cursor.hpp"

namespace ta::cql::detail {
namespace {

const Cell *column(const ResultResponse &res, std::span<const Cell> row, std::string_view name) {
  const auto &cols = res.metadata.columns;
  for (std::size_t i = 0; i < cols.size() && i < row.size(); ++i) {
    if (cols[i].name == name) {
      return &row[i];
    }
  }
  return nullptr;
}

std::string text_of(const Cell *c) {
  if (c == nullptr) {
    return {};
  }
  return as_text(*c).value_or(std::string{});
}

// set<text> / list<text>: [int n] then n x [bytes] (protocol v3+).
bool read_text_set(const Cell &c, std::vector<std::string> &out) {
  out.clear();
  if (!c) {
    return true;
  }
  BodyReader r(*c);
  std::int32_t n = 0;
  if (!r.read_int(n) || n < 0 || static_cast<std::size_t>(n) > r.remaining() / 4) {
    return false;
  }
  for (std::int32_t i = 0; i < n; ++i) {
    Cell e;
    if (!r.read_bytes(e) || !e) {
      return false;
    }
    out.emplace_back(reinterpret_cast<const char *>(e->data()), e->size());
  }
  return true;
}

bool is_any(const IpAddress &a) {
  for (std::size_t i = 0; i < a.length(); ++i) {
    if (a.bytes[i] != 0) {
      return false;
    }
  }
  return true;
}

} // namespace

std::string uuid_text(const Cell &c) {
  if (!c || c->size() != 16) {
    return {};
  }
  static constexpr std::string_view kHex = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) {
      s += '-';
    }
    const auto b = std::to_integer<unsigned>((*c)[i]);
    s += kHex[b >> 4U];
    s += kHex[b & 0xFU];
  }
  return s;
}

std::string read_node_row(const ResultResponse &res, std::size_t r, NodeTable table,
                          std::uint16_t default_port, NodeRow &out) {
  out = {};
  const auto row = res.row(r);
  out.data_center = text_of(column(res, row, "data_center"));
  out.rack = text_of(column(res, row, "rack"));
  if (const Cell *c = column(res, row, "host_id")) {
    out.host_id = uuid_text(*c);
  }
  if (const Cell *c = column(res, row, "schema_version")) {
    out.schema_version = uuid_text(*c);
  }
  if (table != NodeTable::local) {
    const char *name = table == NodeTable::peers_v2 ? "native_address" : "rpc_address";
    const Cell *a = column(res, row, name);
    if (a == nullptr || !*a) {
      return std::string("no ") + name;
    }
    out.address = as_inet(*a);
    if (!out.address) {
      return std::string("invalid ") + name + " (" + std::to_string((*a)->size()) + " bytes)";
    }
    if (table == NodeTable::peers && is_any(*out.address)) {
      const Cell *p = column(res, row, "peer");
      out.address = p != nullptr ? as_inet(*p) : std::nullopt;
      if (!out.address) {
        return "rpc_address is a wildcard and peer is missing";
      }
    }
    out.port = default_port;
    if (table == NodeTable::peers_v2) {
      const Cell *p = column(res, row, "native_port");
      const auto port = p != nullptr ? as_int(*p) : std::nullopt;
      if (!port || *port <= 0 || *port > 0xFFFF) {
        return "no valid native_port";
      }
      out.port = static_cast<std::uint16_t>(*port);
    }
  }
  std::vector<std::string> tokens;
  if (const Cell *c = column(res, row, "tokens"); c != nullptr && !read_text_set(*c, tokens)) {
    return "tokens is not a set<text>";
  }
  out.tokens.reserve(tokens.size());
  for (const auto &t : tokens) {
    std::int64_t v = 0;
    const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (ec != std::errc{} || end != t.data() + t.size() || t.empty()) {
      return "token \"" + t.substr(0, 40) + "\" is not a 64-bit integer";
    }
    out.tokens.push_back(v);
  }
  return {};
}

} // namespace ta::cql::detail
