// cql/ring: replica placement per token range (see ring.hpp).
#include "ring.hpp"

#include <algorithm>
#include <charconv>

namespace ta::cql::detail {

namespace {

// "3" or "3/1" (all replicas / transient ones) -> 3.
bool parse_factor(std::string_view s, std::uint32_t &out) {
  const auto slash = s.find('/');
  const std::string_view all = s.substr(0, slash);
  const auto [end, ec] = std::from_chars(all.data(), all.data() + all.size(), out);
  return ec == std::errc{} && end == all.data() + all.size() && !all.empty();
}

// Names -> small dense ids.
std::uint32_t intern(std::vector<std::string> &names, const std::string &name) {
  const auto it = std::find(names.begin(), names.end(), name);
  if (it != names.end()) {
    return static_cast<std::uint32_t>(it - names.begin());
  }
  names.push_back(name);
  return static_cast<std::uint32_t>(names.size() - 1);
}

struct Dc {
  std::uint32_t rf = 0;      // capped at the node count
  std::uint32_t racks = 0;   // distinct racks with nodes
  std::uint32_t rf_left = 0; // per range
  std::int64_t repeats = 0;  // per range: rack repeats still acceptable
  std::vector<bool> seen;    // per range: racks holding a replica
};

} // namespace

Result<Replication>
parse_replication(std::span<const std::pair<std::string, std::string>> options) {
  std::string cls;
  for (const auto &[k, v] : options) {
    if (k == "class") {
      cls = v;
    }
  }
  if (cls.empty()) {
    return Status::invalid_argument("replication: no class");
  }
  const std::string_view short_cls = std::string_view(cls).substr(cls.rfind('.') + 1);
  if (short_cls == "LocalStrategy") {
    return Replication::local();
  }
  if (short_cls == "SimpleStrategy") {
    for (const auto &[k, v] : options) {
      if (k == "replication_factor") {
        std::uint32_t rf = 0;
        if (!parse_factor(v, rf)) {
          return Status::invalid_argument("replication: bad replication_factor '" + v + "'");
        }
        return Replication::simple(rf);
      }
    }
    return Status::invalid_argument("replication: SimpleStrategy without replication_factor");
  }
  if (short_cls == "NetworkTopologyStrategy") {
    std::vector<std::pair<std::string, std::uint32_t>> dc_rf;
    for (const auto &[k, v] : options) {
      if (k == "class") {
        continue;
      }
      std::uint32_t rf = 0;
      if (!parse_factor(v, rf)) {
        std::string m = "replication: bad factor '";
        m += v;
        m += "' for data centre '";
        m += k;
        m += "'";
        return Status::invalid_argument(std::move(m));
      }
      dc_rf.emplace_back(k, rf);
    }
    return Replication::network_topology(std::move(dc_rf));
  }
  return Status::unsupported("replication class " + cls +
                             " is not understood: no token-aware routing for this keyspace");
}

TokenRing TokenRing::build(std::vector<std::pair<std::int64_t, std::uint32_t>> tokens,
                           const Replication &r, std::vector<std::string> node_dc,
                           std::vector<std::string> node_rack) {
  TokenRing ring;
  if (tokens.empty() || r.kind == Replication::Kind::none) {
    return ring;
  }
  std::stable_sort(tokens.begin(), tokens.end(),
                   [](const auto &a, const auto &b) { return a.first < b.first; });
  tokens.erase(std::unique(tokens.begin(), tokens.end(),
                           [](const auto &a, const auto &b) { return a.first == b.first; }),
               tokens.end());
  const std::size_t n = tokens.size();
  ring.tokens_.reserve(n);
  std::vector<std::uint32_t> owner(n);
  std::vector<std::uint32_t> distinct;
  for (std::size_t i = 0; i < n; ++i) {
    ring.tokens_.push_back(tokens[i].first);
    owner[i] = tokens[i].second;
    distinct.push_back(tokens[i].second);
  }
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());

  if (r.kind == Replication::Kind::local) {
    ring.everywhere_ = true;
    ring.replicas_ = distinct;
    return ring;
  }
  ring.offsets_.reserve(n + 1);
  ring.offsets_.push_back(0);
  const auto chosen = [&](std::size_t from, std::uint32_t node) {
    return std::find(ring.replicas_.begin() + from, ring.replicas_.end(), node) !=
           ring.replicas_.end();
  };

  if (r.kind == Replication::Kind::simple) {
    const std::size_t rf = std::min<std::size_t>(r.rf, distinct.size());
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t from = ring.replicas_.size();
      for (std::size_t j = 0; j < n && ring.replicas_.size() - from < rf; ++j) {
        const std::uint32_t node = owner[(i + j) % n];
        if (!chosen(from, node)) {
          ring.replicas_.push_back(node);
        }
      }
      ring.offsets_.push_back(static_cast<std::uint32_t>(ring.replicas_.size()));
    }
    return ring;
  }

  // NetworkTopologyStrategy: data centres and racks as dense ids.
  std::vector<std::string> dc_names;
  const auto dc_of = [&](std::uint32_t node) {
    return node < node_dc.size() ? node_dc[node] : std::string();
  };
  const auto rack_of = [&](std::uint32_t node) {
    return node < node_rack.size() ? node_rack[node] : std::string();
  };
  std::vector<Dc> dcs;
  std::vector<std::uint32_t> dc_id;   // per distinct node
  std::vector<std::uint32_t> rack_id; // per distinct node, dense within its data centre
  std::vector<std::uint32_t> node_count;
  std::vector<std::vector<std::string>> dc_racks;
  for (const std::uint32_t node : distinct) {
    const std::uint32_t d = intern(dc_names, dc_of(node));
    if (d == dcs.size()) {
      dcs.emplace_back();
      node_count.push_back(0);
      dc_racks.emplace_back();
    }
    ++node_count[d];
    dc_id.push_back(d);
    rack_id.push_back(intern(dc_racks[d], rack_of(node)));
  }
  const auto slot = [&](std::uint32_t node) {
    return static_cast<std::size_t>(std::lower_bound(distinct.begin(), distinct.end(), node) -
                                    distinct.begin());
  };
  for (std::size_t d = 0; d < dcs.size(); ++d) {
    std::uint32_t rf = 0;
    for (const auto &[name, f] : r.dc_rf) {
      if (name == dc_names[d]) {
        rf = f;
      }
    }
    dcs[d].rf = std::min(rf, node_count[d]);
    dcs[d].racks = static_cast<std::uint32_t>(dc_racks[d].size());
    dcs[d].seen.assign(dcs[d].racks, false);
  }
  std::vector<std::uint32_t> owner_slot(n);
  for (std::size_t i = 0; i < n; ++i) {
    owner_slot[i] = static_cast<std::uint32_t>(slot(owner[i]));
  }
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t from = ring.replicas_.size();
    std::size_t to_fill = 0;
    for (auto &dc : dcs) {
      dc.rf_left = dc.rf;
      dc.repeats = static_cast<std::int64_t>(dc.rf) - dc.racks;
      std::fill(dc.seen.begin(), dc.seen.end(), false);
      to_fill += dc.rf > 0 ? 1 : 0;
    }
    for (std::size_t j = 0; j < n && to_fill > 0; ++j) {
      const std::size_t k = (i + j) % n;
      const std::uint32_t node = owner[k];
      Dc &dc = dcs[dc_id[owner_slot[k]]];
      if (dc.rf_left == 0 || chosen(from, node)) {
        continue;
      }
      const std::uint32_t rack = rack_id[owner_slot[k]];
      if (dc.seen[rack]) {
        if (dc.repeats <= 0) {
          continue; // the remaining replicas must go to racks not yet used
        }
        --dc.repeats;
      }
      dc.seen[rack] = true;
      ring.replicas_.push_back(node);
      if (--dc.rf_left == 0) {
        --to_fill;
      }
    }
    ring.offsets_.push_back(static_cast<std::uint32_t>(ring.replicas_.size()));
  }
  return ring;
}

std::span<const std::uint32_t> TokenRing::replicas(std::int64_t token) const noexcept {
  if (tokens_.empty()) {
    return {};
  }
  if (everywhere_) {
    return replicas_;
  }
  auto i = static_cast<std::size_t>(std::lower_bound(tokens_.begin(), tokens_.end(), token) -
                                    tokens_.begin());
  if (i == tokens_.size()) {
    i = 0;
  }
  return {replicas_.data() + offsets_[i], offsets_[i + 1] - offsets_[i]};
}

} // namespace ta::cql::detail
