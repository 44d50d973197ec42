// Every family this registry exports, registered in exposition order. Names,
// help texts, label names and buckets here are the metrics' public contract
// (README "Metrics"): change none of them.
#include <string>

#include "impl.hpp"

#ifndef TA_VERSION
#define TA_VERSION "unknown"
#endif

namespace ta::metrics {

Metrics::Impl::Impl(const Options &o)
    : options(o), alpha(Ewma::alpha(o.tick, kRateWindow)),
      interval_seconds(std::chrono::duration<double>(o.tick).count()),
      registry(std::make_shared<prometheus::Registry>()),
      build_info(prometheus::BuildGauge()
                     .Name("traffic_analyzer_build_info")
                     .Help("Always 1; the version of the traffic-analyzer binary")
                     .Register(*registry)),
      endpoint_writes(prometheus::BuildCounter()
                          .Name("traffic_endpoint_writes_total")
                          .Help("Packet records of the endpoint durably written to the store")
                          .Register(*registry)),
      endpoint_throughput(
          prometheus::BuildGauge()
              .Name("traffic_endpoint_write_throughput")
              .Help("Store writes per second of the endpoint, one-minute EWMA (Dropwizard "
                    "OneMinuteRate)")
              .Register(*registry)),
      endpoint_packets(prometheus::BuildCounter()
                           .Name("traffic_endpoint_packets_total")
                           .Help("Outbound packets attributed to the endpoint")
                           .Register(*registry)),
      endpoint_bytes(prometheus::BuildCounter()
                         .Name("traffic_endpoint_bytes_total")
                         .Help("IP bytes of the outbound packets attributed to the endpoint")
                         .Register(*registry)),
      packets(prometheus::BuildCounter()
                  .Name("traffic_packets_total")
                  .Help("Frames by outcome: counted, or the reason they were skipped")
                  .Register(*registry)),
      frames(prometheus::BuildCounter()
                 .Name("traffic_frames_total")
                 .Help("Frames read from every source")
                 .Register(*registry)
                 .Add({})),
      dns_responses(prometheus::BuildCounter()
                        .Name("traffic_dns_responses_total")
                        .Help("DNS responses parsed whole (any RCODE)")
                        .Register(*registry)
                        .Add({})),
      dns_answers_learnt(prometheus::BuildCounter()
                             .Name("traffic_dns_answers_learnt_total")
                             .Help("A/AAAA answers applied to the address table")
                             .Register(*registry)
                             .Add({})),
      dns_errors(prometheus::BuildCounter()
                     .Name("traffic_dns_errors_total")
                     .Help("DNS messages from port 53 rejected, by reason")
                     .Register(*registry)),
      dns_table_addresses(prometheus::BuildGauge()
                              .Name("traffic_dns_table_addresses")
                              .Help("Addresses in the address-to-hostname table")
                              .Register(*registry)
                              .Add({})),
      dns_table_evictions(prometheus::BuildCounter()
                              .Name("traffic_dns_table_evictions_total")
                              .Help("Addresses evicted from the full address-to-hostname table")
                              .Register(*registry)
                              .Add({})),
      unresolved(prometheus::BuildCounter()
                     .Name("traffic_unresolved_packets_total")
                     .Help("Counted packets to addresses no DNS answer named")
                     .Register(*registry)
                     .Add({})),
      local_hosts_learnt(prometheus::BuildCounter()
                             .Name("traffic_local_hosts_learnt_total")
                             .Help("Local hosts learnt from DNS responses they received")
                             .Register(*registry)
                             .Add({})),
      local_host_evictions(prometheus::BuildCounter()
                               .Name("traffic_local_host_evictions_total")
                               .Help("Learnt local hosts forgotten, least recently active first, "
                                     "over --max-local-hosts")
                               .Register(*registry)
                               .Add({})),
      local_hosts(prometheus::BuildGauge()
                      .Name("traffic_local_hosts")
                      .Help("Local hosts learnt from DNS responses and held now")
                      .Register(*registry)
                      .Add({})),
      capture_received(prometheus::BuildCounter()
                           .Name("traffic_capture_received_total")
                           .Help("Packets received by the capture (libpcap ps_recv)")
                           .Register(*registry)),
      capture_dropped(prometheus::BuildCounter()
                          .Name("traffic_capture_dropped_total")
                          .Help("Packets dropped by the kernel: buffer full (libpcap ps_drop)")
                          .Register(*registry)),
      capture_if_dropped(prometheus::BuildCounter()
                             .Name("traffic_capture_interface_dropped_total")
                             .Help("Packets dropped by the interface (libpcap ps_ifdrop)")
                             .Register(*registry)),
      files_ingested(prometheus::BuildCounter()
                         .Name("traffic_capture_files_ingested_total")
                         .Help("Capture files read to their end")
                         .Register(*registry)
                         .Add({})),
      files_skipped(prometheus::BuildCounter()
                        .Name("traffic_ingest_files_skipped_total")
                        .Help("Names in a watched directory not read: symlink, "
                              "not_regular_file, unreadable")
                        .Register(*registry)),
      files_deferred(prometheus::BuildGauge()
                         .Name("traffic_ingest_files_deferred")
                         .Help("Files of a watched directory waiting for the store to start "
                               "their ledger entry")
                         .Register(*registry)
                         .Add({})),
      file_deferrals(prometheus::BuildCounter()
                         .Name("traffic_ingest_file_deferrals_total")
                         .Help("Files a watched directory put off because the store could not "
                               "start their ledger entry (once per file and outage)")
                         .Register(*registry)
                         .Add({})),
      store_batch_seconds(
          prometheus::BuildHistogram()
              .Name("traffic_store_batch_seconds")
              .Help("Time to write one batch durably to the store")
              .Register(*registry)
              .Add({},
                   prometheus::Histogram::BucketBoundaries{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                           0.1, 0.25, 0.5, 1, 2.5, 5, 10})),
      store_errors(prometheus::BuildCounter()
                       .Name("traffic_store_errors_total")
                       .Help("Failed store writes")
                       .Register(*registry)
                       .Add({})),
      records_pending(prometheus::BuildGauge()
                          .Name("traffic_store_records_pending")
                          .Help("Records sealed but not yet written to the store")
                          .Register(*registry)
                          .Add({})),
      endpoint_received_packets(
          prometheus::BuildCounter()
              .Name("traffic_endpoint_received_packets_total")
              .Help("Packets the endpoint sent to a client (flow naming), attributed to it")
              .Register(*registry)),
      endpoint_received_bytes(
          prometheus::BuildCounter()
              .Name("traffic_endpoint_received_bytes_total")
              .Help("IP bytes of the packets the endpoint sent to a client (flow naming)")
              .Register(*registry)),
      names(prometheus::BuildCounter()
                .Name("traffic_names_total")
                .Help("Counted packets (both directions) by where their endpoint's name came from")
                .Register(*registry)),
      flows_active(prometheus::BuildGauge()
                       .Name("traffic_flows_active")
                       .Help("Flows in the flow table")
                       .Register(*registry)
                       .Add({})),
      flow_evictions(prometheus::BuildCounter()
                         .Name("traffic_flow_evictions_total")
                         .Help("Flows evicted from the full flow table (least recently active)")
                         .Register(*registry)
                         .Add({})),
      encrypted_dns_flows(prometheus::BuildCounter()
                              .Name("traffic_encrypted_dns_flows_total")
                              .Help("Flows carrying DNS the analyzer cannot read, by kind (dot: "
                                    "TCP 853, doq: UDP 853, doh: a known DoH service)")
                              .Register(*registry)),
      naming_outcomes(prometheus::BuildCounter()
                          .Name("traffic_flow_naming_total")
                          .Help("Flows by what the naming parsers concluded (tls_sni, http_host, "
                                "quic_sni, a reason there was no name, ...)")
                          .Register(*registry)),
      quic_packet_errors(
          prometheus::BuildCounter()
              .Name("traffic_quic_packet_errors_total")
              .Help("Client QUIC packets the Initial parser could not use, by reason")
              .Register(*registry)) {
  build_info.Add({{"version", TA_VERSION}}).Set(1);
  for (std::size_t i = 0; i < outcome_counters.size(); ++i) {
    outcome_counters[i] =
        &packets.Add({{"outcome", std::string(to_string(static_cast<attribute::Outcome>(i)))}});
  }
  for (std::size_t i = 0; i < name_counters.size(); ++i) {
    name_counters[i] = &names.Add(
        {{"source", std::string(store::name_source_name(static_cast<store::NameSource>(i)))}});
  }
  for (std::size_t i = 0; i < encrypted_dns_counters.size(); ++i) {
    encrypted_dns_counters[i] = &encrypted_dns_flows.Add(
        {{"kind",
          std::string(attribute::encrypted_dns_name(static_cast<attribute::EncryptedDns>(i)))}});
  }
  for (std::size_t i = 0; i < naming_outcome_counters.size(); ++i) {
    naming_outcome_counters[i] = &naming_outcomes.Add(
        {{"outcome", std::string(flow::naming_outcome_name(static_cast<flow::NamingOutcome>(i)))}});
  }
  for (std::size_t i = 0; i < quic_error_counters.size(); ++i) {
    quic_error_counters[i] =
        &quic_packet_errors.Add({{"reason", std::string(flow::quic_packet_error_name(i))}});
  }
  // dns_errors[0] is `ok`: not an error.
  for (std::size_t i = 1; i < dns_error_counters.size(); ++i) {
    dns_error_counters[i] =
        &dns_errors.Add({{"reason", std::string(to_string(static_cast<dns::DnsError>(i)))}});
  }
}

} // namespace ta::metrics
