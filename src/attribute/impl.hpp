// attribute/impl: the state of one Analyzer, shared by the files that work
// on it:
//   analyzer.cpp  frames in, DNS learning, local hosts, per-packet naming
//                 (`--naming dns`, and non-TCP/UDP packets under flow naming),
//                 batches out
//   flows.cpp     flow naming: the flow table's packets into records, flows
//                 into per-batch flow records, encrypted DNS
#pragma once

#include <bitset>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "ta/attribute/analyzer.hpp"
#include "ta/common/flat_index.hpp"
#include "ta/dns/client_table.hpp"
#include "ta/flow/flow.hpp"

#include "local_hosts.hpp"

namespace ta::attribute {

inline constexpr std::uint8_t kTcp = 6;
inline constexpr std::uint8_t kUdp = 17;
inline constexpr std::uint16_t kDnsPort = 53;

struct Analyzer::Impl {
  Impl(Options o, BatchSink s);

  Options opt;
  BatchSink sink;
  Stats stats;
  dns::AddressTable table;
  dns::ClientTable clients; // flow naming: answers per client
  dns::TcpReassembler tcp;
  dns::DnsResponse response; // reused: ~2 KiB, not on the stack per packet
  std::bitset<65536> port_allowed;
  bool port_filter = false;

  // Local hosts learnt from DNS responses (when Options::local_nets is empty),
  // bounded, least recently active evicted (local_hosts.hpp). A one-entry
  // cache serves the common case of one host sending most packets; it is
  // valid while the set's generation is the one it saw.
  LocalHosts locals;
  struct LocalCache {
    IpAddress address;
    std::uint64_t generation = 0;
    bool local = false;
  };
  LocalCache src_cache;
  bool preloading = false; // seeding from the store: nothing to persist again

  // The open batch. Names get a batch-local index on first use; index 0 is
  // always the unresolved endpoint "".
  store::Batch batch;
  std::vector<EndpointRun> batch_runs;
  std::vector<std::uint32_t> name_stamp; // by NameId: batch number of last use
  std::vector<std::uint32_t> name_index; // by NameId: batch-local index
  // Flow name -> batch-local index: an index over batch.endpoints (the names
  // name_index_of added), so a name is stored once per batch (a name flood
  // puts tens of thousands of names in each).
  flat::FlatIndex flow_names;
  std::uint32_t batch_no = 1;
  // The run summary, bounded by opt.summary_capacity (trim_summary).
  std::map<std::string, EndpointRun> run_summary;
  EndpointRun summary_rest;
  std::uint64_t summary_folded = 0;

  std::int64_t source_id = 0;
  std::uint64_t frames_done = 0;
  std::uint64_t frames_through = 0; // 1 + highest frame index seen in the source
  bool in_source = false;

  // Context for DNS-over-TCP messages delivered through the sink below.
  IpAddress dns_receiver;
  TimeUs dns_ts = 0;
  dns::TcpReassembler::MessageSink on_tcp_message;

  // Flow naming (Naming::flow only).
  std::unique_ptr<flow::Table> flows;
  std::unordered_set<std::string> doh_names;
  std::unordered_set<IpAddress, IpAddressHash> encrypted_dns_clients; // bounded, for the summary

  // analyzer.cpp
  void reset_batch();
  std::uint32_t batch_index(dns::NameId id);
  bool is_local(const IpAddress &a);
  bool in_local_nets(const IpAddress &a) const;
  void touch_flow_ends(flow::FlowInfo &f);
  void add_local(const IpAddress &a);
  void apply_dns(Bytes msg, const IpAddress &receiver, TimeUs ts);
  void count(Outcome o) { ++stats.outcomes[static_cast<std::size_t>(o)]; }
  void add_run(std::uint32_t endpoint, store::Direction direction, TimeUs ts, std::uint32_t bytes,
               store::NameSource source);
  void seal(std::uint64_t through, bool complete);
  void trim_summary();
  void on_frame(decode::LinkType link, std::uint64_t idx, TimeUs ts, Bytes frame);
  void per_packet(const decode::PacketView &pv, std::uint64_t idx, TimeUs ts);
  void maybe_seal(std::uint64_t idx);

  // flows.cpp
  void start_flows();
  void to_flow_table(const decode::PacketView &pv, std::uint64_t idx, TimeUs ts);
  void on_emitted(const flow::Emitted &e);
  std::uint32_t flow_slot(flow::FlowInfo &f);
  std::uint32_t name_index_of(std::string_view name);
  void note_encrypted_dns(const flow::FlowInfo &f);
  void refresh_flow_stats();
};

} // namespace ta::attribute
