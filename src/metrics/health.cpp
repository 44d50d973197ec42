// Pipeline health: frame outcomes, DNS learning, capture counters per
// interface, ingest and store health.
#include "impl.hpp"
#include "labels.hpp"

namespace ta::metrics {
namespace {

// Adds the increase of a cumulative value since `last` (all of it after a
// restart) and remembers the new value.
void add_delta(prometheus::Counter &counter, std::uint64_t &last, std::uint64_t now) {
  counter.Increment(as_double(now >= last ? now - last : now));
  last = now;
}

} // namespace

void Metrics::on_store_error() {
  impl_->store_errors.Increment();
}

void Metrics::set_records_pending(std::uint64_t records) {
  impl_->records_pending.Set(as_double(records));
}

void Metrics::publish(const attribute::Stats &stats, std::size_t dns_table_size,
                      std::uint64_t dns_evictions) {
  Impl &m = *impl_;
  const std::lock_guard lock(m.stats_mu);
  attribute::Stats &last = m.last_stats;
  add_delta(m.frames, last.frames, stats.frames);
  for (std::size_t i = 0; i < stats.outcomes.size(); ++i) {
    add_delta(*m.outcome_counters[i], last.outcomes[i], stats.outcomes[i]);
  }
  add_delta(m.dns_responses, last.dns_responses, stats.dns_responses);
  add_delta(m.dns_answers_learnt, last.dns_answers_learnt, stats.dns_answers_learnt);
  for (std::size_t i = 1; i < stats.dns_errors.size(); ++i) {
    add_delta(*m.dns_error_counters[i], last.dns_errors[i], stats.dns_errors[i]);
  }
  add_delta(m.unresolved, last.unresolved, stats.unresolved);
  add_delta(m.local_hosts_learnt, last.local_hosts_learnt, stats.local_hosts_learnt);
  add_delta(m.local_host_evictions, last.local_hosts_evicted, stats.local_hosts_evicted);
  m.local_hosts.Set(as_double(stats.local_hosts));
  add_delta(m.dns_table_evictions, m.last_evictions, dns_evictions);
  for (std::size_t i = 0; i < stats.names.size(); ++i) {
    add_delta(*m.name_counters[i], last.names[i], stats.names[i]);
  }
  for (std::size_t i = 0; i < stats.encrypted_dns_flows.size(); ++i) {
    add_delta(*m.encrypted_dns_counters[i], last.encrypted_dns_flows[i],
              stats.encrypted_dns_flows[i]);
  }
  add_delta(m.flow_evictions, last.flows_evicted, stats.flows_evicted);
  for (std::size_t i = 0; i < stats.naming_outcomes.size(); ++i) {
    add_delta(*m.naming_outcome_counters[i], last.naming_outcomes[i], stats.naming_outcomes[i]);
  }
  for (std::size_t i = 0; i < stats.quic_packet_errors.size(); ++i) {
    add_delta(*m.quic_error_counters[i], last.quic_packet_errors[i], stats.quic_packet_errors[i]);
  }
  m.flows_active.Set(as_double(stats.flows_active));
  m.dns_table_addresses.Set(static_cast<double>(dns_table_size));
}

void Metrics::set_capture_stats(const std::string &interface, std::uint64_t received,
                                std::uint64_t dropped, std::uint64_t if_dropped) {
  Impl &m = *impl_;
  const std::lock_guard lock(m.stats_mu);
  auto it = m.interfaces.find(interface);
  if (it == m.interfaces.end()) {
    const prometheus::Labels labels{{"interface", utf8_label(interface)}};
    Interface fresh;
    fresh.received = &m.capture_received.Add(labels);
    fresh.dropped = &m.capture_dropped.Add(labels);
    fresh.if_dropped = &m.capture_if_dropped.Add(labels);
    it = m.interfaces.emplace(interface, fresh).first;
  }
  Interface &i = it->second;
  add_delta(*i.received, i.last_received, received);
  add_delta(*i.dropped, i.last_dropped, dropped);
  add_delta(*i.if_dropped, i.last_if_dropped, if_dropped);
}

void Metrics::set_process_flows(std::string_view outcome, std::uint64_t flows) {
  Impl &m = *impl_;
  const std::lock_guard lock(m.stats_mu);
  if (m.process_flows == nullptr) {
    m.process_flows = &prometheus::BuildCounter()
                           .Name("traffic_process_flows_total")
                           .Help("Flows of this machine by whether the program owning their "
                                 "socket was found: mapped, or why not (no_socket, "
                                 "other_namespace, no_permission)")
                           .Register(*m.registry);
  }
  auto it = m.process_flow_counters.find(outcome);
  if (it == m.process_flow_counters.end()) {
    prometheus::Counter *c = &m.process_flows->Add({{"outcome", std::string(outcome)}});
    it = m.process_flow_counters.emplace(std::string(outcome), std::make_pair(c, 0)).first;
  }
  add_delta(*it->second.first, it->second.second, flows);
}

void Metrics::on_file_ingested() {
  impl_->files_ingested.Increment();
}

void Metrics::on_file_skipped(const std::string &reason) {
  impl_->files_skipped.Add({{"reason", reason}}).Increment();
}

void Metrics::on_file_deferred() {
  impl_->file_deferrals.Increment();
}

void Metrics::set_files_deferred(std::uint64_t waiting) {
  impl_->files_deferred.Set(static_cast<double>(waiting));
}

} // namespace ta::metrics
