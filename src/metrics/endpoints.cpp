// Per-endpoint series: hostnames (or their registrable domains) to label
// values under the max_endpoints bound, the legacy per-host names, and
// per-batch sums.
#include <prometheus/check_names.h>

#include "impl.hpp"
#include "labels.hpp"

namespace ta::metrics {

Endpoint *Metrics::Impl::resolve(std::string_view name) {
  if (name.empty()) {
    return special(unresolved_endpoint, kUnresolved, "unresolved");
  }
  if (const auto it = by_name.find(name); it != by_name.end()) {
    return it->second;
  }
  // Group::domain: the series is the registrable domain's. Names without one
  // (IP literals, public suffixes, single labels, non-DNS bytes) come back
  // as themselves, so they keep their own series as in Group::host.
  std::string grouped;
  std::string_view key = name;
  if (grouper) {
    grouped = grouper->group(name).key;
    key = grouped;
  }
  std::string label = utf8_label(key);
  if (label == kUnresolved || label == kOther) {
    label.replace(0, 1, "\\x28");
  }
  Endpoint *e = nullptr;
  if (const auto it = by_label.find(label); it != by_label.end()) {
    e = it->second; // another name with the same label value
  } else if (by_label.size() < options.max_endpoints) {
    e = make_endpoint(label, legacy_host(key));
    by_label.emplace(std::move(label), e);
  } else {
    return special(other_endpoint, kOther, "other");
  }
  // Names seen again skip the label work; bounded like the labels.
  if (by_name.size() < 2 * options.max_endpoints) {
    by_name.emplace(std::string(name), e);
  }
  return e;
}

Endpoint *Metrics::Impl::special(Endpoint *&slot, std::string_view label,
                                 std::string_view legacy_name) {
  if (slot == nullptr) {
    slot = make_endpoint(std::string(label), std::string(legacy_name));
  }
  return slot;
}

Endpoint *Metrics::Impl::make_endpoint(const std::string &label, const std::string &legacy_name) {
  Endpoint &e = endpoints.emplace_back();
  const prometheus::Labels labels{{"endpoint", label}};
  e.writes = &endpoint_writes.Add(labels);
  e.packets = &endpoint_packets.Add(labels);
  e.bytes = &endpoint_bytes.Add(labels);
  e.received_packets = &endpoint_received_packets.Add(labels);
  e.received_bytes = &endpoint_received_bytes.Add(labels);
  e.throughput = &endpoint_throughput.Add(labels);
  if (options.legacy_names) {
    e.legacy = legacy_for(legacy_name);
  }
  return &e;
}

// Hosts that sanitise alike share one pair. None for a name Prometheus
// reserves ("__" prefix) or one of our own families (host "traffic_endpoint").
Legacy *Metrics::Impl::legacy_for(const std::string &host) {
  if (const auto it = legacy_by_name.find(host); it != legacy_by_name.end()) {
    return it->second;
  }
  Legacy *result = nullptr;
  const std::string writes_name = host + "_writes_total";
  const std::string throughput_name = host + "_write_throughput";
  if (prometheus::CheckMetricName(writes_name) && prometheus::CheckMetricName(throughput_name) &&
      host != "traffic_endpoint") {
    Legacy &l = legacies.emplace_back();
    l.writes = &prometheus::BuildCounter()
                    .Name(writes_name)
                    .Help("Records of endpoint " + host + " written (seed exporter's name)")
                    .Register(*registry)
                    .Add({});
    l.throughput =
        &prometheus::BuildGauge()
             .Name(throughput_name)
             .Help("Writes/s of endpoint " + host + ", one-minute EWMA (seed exporter's name)")
             .Register(*registry)
             .Add({});
    result = &l;
  }
  legacy_by_name.emplace(host, result);
  return result;
}

void Metrics::Impl::sum_batch(const store::Batch &batch, Scratch &s) {
  s.sums.assign(batch.endpoints.size(), Sums{});
  for (const store::PacketRecord &r : batch.packets) {
    if (r.endpoint < s.sums.size()) { // out of range: a producer bug; not counted
      Sums &sum = s.sums[r.endpoint];
      if (r.direction == store::Direction::sent) {
        ++sum.packets;
        sum.bytes += r.bytes;
      } else {
        ++sum.received_packets;
        sum.received_bytes += r.bytes;
      }
    }
  }
  s.endpoints.assign(batch.endpoints.size(), nullptr);
  const std::lock_guard lock(mu);
  for (std::size_t i = 0; i < s.sums.size(); ++i) {
    if (s.sums[i].packets != 0 || s.sums[i].received_packets != 0) {
      s.endpoints[i] = resolve(batch.endpoints[i]);
    }
  }
}

void Metrics::on_batch_sealed(const store::Batch &batch) {
  Scratch &s = impl_->sealed;
  const std::lock_guard lock(s.mu);
  impl_->sum_batch(batch, s);
  for (std::size_t i = 0; i < s.endpoints.size(); ++i) {
    if (Endpoint *e = s.endpoints[i]) {
      e->packets->Increment(as_double(s.sums[i].packets));
      e->bytes->Increment(as_double(s.sums[i].bytes));
      e->received_packets->Increment(as_double(s.sums[i].received_packets));
      e->received_bytes->Increment(as_double(s.sums[i].received_bytes));
    }
  }
}

void Metrics::on_batch_written(const store::Batch &batch, double seconds) {
  impl_->store_batch_seconds.Observe(seconds);
  Scratch &s = impl_->written;
  const std::lock_guard lock(s.mu);
  impl_->sum_batch(batch, s);
  for (std::size_t i = 0; i < s.endpoints.size(); ++i) {
    if (Endpoint *e = s.endpoints[i]) {
      const std::uint64_t n = s.sums[i].packets;
      e->writes->Increment(as_double(n));
      e->meter.mark(n);
      if (e->legacy != nullptr) {
        e->legacy->writes->Increment(as_double(n));
        e->legacy->meter.mark(n);
      }
    }
  }
}

} // namespace ta::metrics
