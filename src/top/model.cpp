// top/model: the live view's model (top.hpp).
#include <algorithm>
#include <cctype>
#include <utility>

#include "ta/common/escape.hpp"
#include "ta/top/top.hpp"

namespace ta::top {
namespace {

// Per field: the growth since `last`, or the new value when it went down
// (the analyzer's summary restarts an endpoint that was folded and came back).
std::uint64_t grown(std::uint64_t now, std::uint64_t last) noexcept {
  return now >= last ? now - last : now;
}

Counters delta_of(const Counters &now, const Counters &last) noexcept {
  return {grown(now.sent_packets, last.sent_packets), grown(now.sent_bytes, last.sent_bytes),
          grown(now.received_packets, last.received_packets),
          grown(now.received_bytes, last.received_bytes)};
}

// Several endpoints in one row: programs are a union, the first
// kKeptPrograms listed, the rest counted.
void merge_programs(std::vector<std::string> &into, std::uint64_t &more,
                    const std::vector<std::string> &programs, std::uint64_t more_programs) {
  for (const std::string &p : programs) {
    if (std::find(into.begin(), into.end(), p) != into.end()) {
      continue;
    }
    if (into.size() < kKeptPrograms) {
      into.push_back(p);
    } else {
      ++more;
    }
  }
  more += more_programs;
}

std::int64_t add_flows(std::int64_t into, std::int64_t flows) {
  return flows < 0 ? into : (into < 0 ? 0 : into) + flows;
}

std::string sources_text(std::uint32_t sources, const std::vector<std::string> &names) {
  std::string out;
  for (std::uint32_t i = 0; i < 32; ++i) {
    if ((sources & (1U << i)) == 0) {
      continue;
    }
    if (!out.empty()) {
      out += '+';
    }
    out += i < names.size() ? names[i] : std::to_string(i);
  }
  return out;
}

std::string programs_text(const std::vector<std::string> &programs, std::uint64_t more,
                          std::size_t shown) {
  std::string out;
  std::size_t i = 0;
  for (; i < programs.size() && i < shown; ++i) {
    if (i > 0) {
      out += ',';
    }
    out += escape_name(programs[i]);
  }
  const std::uint64_t rest = more + (programs.size() - i);
  if (rest > 0) {
    out += "+" + std::to_string(rest);
  }
  return out;
}

bool contains_folded(std::string_view haystack, std::string_view needle) {
  if (needle.empty()) {
    return true;
  }
  const auto lower = [](char c) {
    return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  };
  const auto it = std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(),
                              [&](char a, char b) { return lower(a) == lower(b); });
  return it != haystack.end();
}

double sort_value(const Row &r, Column c, std::size_t w) {
  switch (c) {
  case Column::sent_rate:
    return r.sent.bytes[w];
  case Column::received_rate:
    return r.received.bytes[w];
  case Column::packet_rate:
    return r.sent.packets[w] + r.received.packets[w];
  case Column::sent_total:
    return static_cast<double>(r.totals.sent_bytes);
  case Column::received_total:
    return static_cast<double>(r.totals.received_bytes);
  case Column::flows:
    return static_cast<double>(r.flows);
  case Column::name:
  case Column::count_:
    break;
  }
  return 0;
}

} // namespace

std::string_view group_by_name(GroupBy g) noexcept {
  switch (g) {
  case GroupBy::host:
    return "host";
  case GroupBy::domain:
    return "domain";
  case GroupBy::process:
    return "process";
  }
  return "host";
}

std::string_view column_name(Column c) noexcept {
  switch (c) {
  case Column::name:
    return "name";
  case Column::sent_rate:
    return "sent_rate";
  case Column::received_rate:
    return "received_rate";
  case Column::packet_rate:
    return "packet_rate";
  case Column::sent_total:
    return "sent_total";
  case Column::received_total:
    return "received_total";
  case Column::flows:
    return "flows";
  case Column::count_:
    break;
  }
  return "name";
}

Model::Model(Options options) : options_(std::move(options)) {
  options_.max_rows = std::max<std::size_t>(options_.max_rows, 1);
}

void Model::start(double now_seconds) {
  started_ = true;
  start_ = now_seconds;
  now_ = now_seconds;
}

double Model::seconds_since_start() const noexcept {
  return started_ ? now_ - start_ : 0.0;
}

void Model::Group::add(const Sample &s) {
  totals += s.totals;
  flows = add_flows(flows, s.flows);
  sources |= s.sources;
  merge_programs(programs, more_programs, s.programs, s.more_programs);
}

void Model::Group::add(const Group &g) {
  totals += g.totals;
  flows = add_flows(flows, g.flows);
  sources |= g.sources;
  merge_programs(programs, more_programs, g.programs, g.more_programs);
}

// The group as fed now: its counters' and flows' growth since last time.
void Model::Kept::take(const Group &g, std::size_t slots) {
  const Counters d = delta_of(g.totals, last);
  deltas.resize(slots - 1); // a new row: nothing before now
  deltas.push_back(d);
  totals += d;
  last = g.totals;
  if (g.flows >= 0) {
    const auto grew = static_cast<std::int64_t>(
        grown(static_cast<std::uint64_t>(g.flows),
              static_cast<std::uint64_t>(flows_last < 0 ? 0 : flows_last)));
    flows = (flows < 0 ? 0 : flows) + grew;
    flows_last = g.flows;
  }
  sources = g.sources;
  programs = g.programs;
  more_programs = g.more_programs;
}

void Model::update(double now_seconds, const std::vector<Sample> &samples, const Counters &rest) {
  Sample r;
  r.totals = rest;
  update(now_seconds, samples, r);
}

void Model::update(double now_seconds, const std::vector<Sample> &samples, const Sample &rest) {
  if (!started_) {
    start(now_seconds);
  }
  now_ = now_seconds;
  // Group, then keep the busiest max_rows groups; the rest is "(other)".
  std::map<std::string, Group> groups;
  for (const Sample &s : samples) {
    groups[options_.group_key ? options_.group_key(s.name) : s.name].add(s);
  }
  std::vector<std::pair<const std::string *, const Group *>> order;
  order.reserve(groups.size());
  for (const auto &[key, g] : groups) {
    order.emplace_back(&key, &g);
  }
  Group other;
  other.add(rest);
  if (order.size() > options_.max_rows) {
    std::stable_sort(order.begin(), order.end(), [](const auto &a, const auto &b) {
      return a.second->totals.packets() > b.second->totals.packets();
    });
    for (std::size_t i = options_.max_rows; i < order.size(); ++i) {
      other.add(*order[i].second);
    }
    order.resize(options_.max_rows);
  }

  times_.push_back(now_seconds);
  const std::size_t slots = times_.size();
  std::map<std::string, Kept> next;
  for (const auto &[key, g] : order) {
    auto node = rows_.extract(*key);
    Kept k = node.empty() ? Kept{} : std::move(node.mapped());
    k.take(*g, slots);
    next.emplace(*key, std::move(k));
  }
  rows_.swap(next);
  if (has_other_ || other.totals.packets() > 0) {
    other_.take(other, slots);
    has_other_ = true;
  }
  // Forget what left the largest window.
  const double oldest = now_seconds - kWindows.back();
  while (times_.size() > 1 && times_.front() <= oldest) {
    times_.pop_front();
    for (auto &[key, k] : rows_) {
      k.deltas.pop_front();
    }
    if (has_other_) {
      other_.deltas.pop_front();
    }
  }
}

Rates Model::rates_of(const std::deque<Counters> &deltas, bool received) const {
  Rates r;
  for (std::size_t w = 0; w < kWindowCount; ++w) {
    const double span = std::min<double>(kWindows[w], now_ - start_);
    if (span <= 0) {
      continue;
    }
    const double after = now_ - kWindows[w];
    std::uint64_t bytes = 0;
    std::uint64_t packets = 0;
    for (std::size_t i = 0; i < deltas.size() && i < times_.size(); ++i) {
      if (times_[i] > after) {
        bytes += received ? deltas[i].received_bytes : deltas[i].sent_bytes;
        packets += received ? deltas[i].received_packets : deltas[i].sent_packets;
      }
    }
    r.bytes[w] = static_cast<double>(bytes) / span;
    r.packets[w] = static_cast<double>(packets) / span;
  }
  return r;
}

std::vector<Row> Model::rows(const ViewOptions &view) const {
  std::vector<Row> out;
  const auto make = [&](const std::string &name, const Kept &k, bool other) {
    Row r;
    r.name = other ? std::string(kOtherRow)
                   : (name.empty() ? std::string(kUnresolvedRow) : escape_name(name));
    r.other = other;
    r.totals = k.totals;
    r.sent = rates_of(k.deltas, false);
    r.received = rates_of(k.deltas, true);
    r.flows = k.flows;
    r.source = sources_text(k.sources, options_.source_names);
    r.program = programs_text(k.programs, k.more_programs, options_.shown_programs);
    return r;
  };
  for (const auto &[name, k] : rows_) {
    Row r = make(name, k, false);
    if (contains_folded(r.name, view.filter)) {
      out.push_back(std::move(r));
    }
  }
  const std::size_t w = std::min(view.sort_window, kWindowCount - 1);
  std::stable_sort(out.begin(), out.end(), [&](const Row &a, const Row &b) {
    if (view.sort != Column::name) {
      const double va = sort_value(a, view.sort, w);
      const double vb = sort_value(b, view.sort, w);
      if (va != vb) {
        return view.ascending ? va < vb : va > vb;
      }
      return a.name < b.name;
    }
    return view.ascending ? a.name > b.name : a.name < b.name;
  });
  if (view.limit > 0 && out.size() > view.limit) {
    out.resize(view.limit);
  }
  if (has_other_) {
    Row r = make({}, other_, true);
    if (contains_folded(r.name, view.filter)) {
      out.push_back(std::move(r));
    }
  }
  return out;
}

Counters Model::totals() const {
  Counters c = has_other_ ? other_.totals : Counters{};
  for (const auto &[name, k] : rows_) {
    c += k.totals;
  }
  return c;
}

Rates Model::total_rates(bool received) const {
  std::deque<Counters> sum(times_.size());
  const auto add = [&](const std::deque<Counters> &d) {
    for (std::size_t i = 0; i < d.size() && i < sum.size(); ++i) {
      sum[i] += d[i];
    }
  };
  for (const auto &[name, k] : rows_) {
    add(k.deltas);
  }
  if (has_other_) {
    add(other_.deltas);
  }
  return rates_of(sum, received);
}

} // namespace ta::top
