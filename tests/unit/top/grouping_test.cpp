// The live view grouped by registrable domain (the model's group key from
// ta_domain) and by program (ProgramTracker over hand-built batches): rows add
// up, flows, sources and programs merge, and every counted packet is in some
// row. Registrable domains are those of the Public Suffix List.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ta/domain/registrable.hpp"
#include "ta/top/programs.hpp"
#include "ta/top/top.hpp"

namespace ta::top {
namespace {

const std::vector<std::string> kSourceNames = {"none", "sni", "quic", "http", "dns"};

std::uint32_t bit(store::NameSource s) {
  return 1U << static_cast<unsigned>(s);
}

Sample host(std::string name, std::uint64_t sent_packets, std::int64_t flows,
            store::NameSource source, std::vector<std::string> programs = {}) {
  Sample s;
  s.name = std::move(name);
  s.totals = {sent_packets, 100 * sent_packets, 0, 0};
  s.flows = flows;
  s.sources = bit(source);
  s.programs = std::move(programs);
  return s;
}

const Row *find(const std::vector<Row> &rows, const std::string &name) {
  for (const Row &r : rows) {
    if (r.name == name) {
      return &r;
    }
  }
  return nullptr;
}

TEST(TopGrouping, ByRegistrableDomain) {
  auto grouper = domain::Grouper::create();
  ASSERT_TRUE(grouper.ok());
  auto shared = std::make_shared<domain::Grouper>(std::move(*grouper));
  Options o;
  o.group_key = [shared](std::string_view name) { return shared->group(name).key; };
  o.source_names = kSourceNames;
  Model m(o);
  m.start(0);
  m.update(1, {host("rr1---sn-abc.googlevideo.com", 10, 1, store::NameSource::quic, {"firefox"}),
               host("rr7---sn-xyz.googlevideo.com", 20, 2, store::NameSource::sni, {"firefox"}),
               host("www.googlevideo.com", 5, 1, store::NameSource::dns, {"curl"}),
               host("a.news.example.co.uk", 3, 1, store::NameSource::sni),
               host("b.example.co.uk", 4, 1, store::NameSource::http),
               host("alice.github.io", 1, 1, store::NameSource::sni),
               host("bob.github.io", 2, 1, store::NameSource::sni),
               host("192.0.2.7", 6, 1, store::NameSource::none),
               host("", 7, 3, store::NameSource::none)});
  const auto rows = m.rows({});
  ASSERT_EQ(rows.size(), 6U);
  const Row *video = find(rows, "googlevideo.com");
  ASSERT_NE(video, nullptr);
  EXPECT_EQ(video->totals.sent_packets, 35U);
  EXPECT_EQ(video->flows, 4);
  EXPECT_EQ(video->source, "sni+quic+dns");
  EXPECT_EQ(video->program, "firefox,curl");
  const Row *uk = find(rows, "example.co.uk");
  ASSERT_NE(uk, nullptr);
  EXPECT_EQ(uk->totals.sent_packets, 7U);
  EXPECT_EQ(uk->source, "sni+http");
  EXPECT_EQ(uk->program, "");
  // github.io is a private suffix: each site is its own domain.
  ASSERT_NE(find(rows, "alice.github.io"), nullptr);
  ASSERT_NE(find(rows, "bob.github.io"), nullptr);
  // IP literals and unresolved traffic stay as they are.
  ASSERT_NE(find(rows, "192.0.2.7"), nullptr);
  const Row *unresolved = find(rows, "(unresolved)");
  ASSERT_NE(unresolved, nullptr);
  EXPECT_EQ(unresolved->flows, 3);
  EXPECT_EQ(m.totals().sent_packets, 58U);
}

store::FlowRecord flow(std::uint64_t first_frame, std::uint32_t name, store::NameSource source,
                       std::string program, std::uint64_t sent, std::uint64_t received) {
  store::FlowRecord f;
  f.origin_source = 1;
  f.first_frame = first_frame;
  f.name = name;
  f.source = source;
  f.program = std::move(program);
  f.pid = f.program.empty() ? 0 : 4242;
  f.sent_packets = sent;
  f.sent_bytes = 100 * sent;
  f.received_packets = received;
  f.received_bytes = 1000 * received;
  return f;
}

store::PacketRecord packet(std::uint64_t frame, std::uint32_t flow, std::uint32_t endpoint,
                           store::NameSource source) {
  store::PacketRecord p;
  p.frame = frame;
  p.flow = flow;
  p.endpoint = endpoint;
  p.source = source;
  p.bytes = 100;
  return p;
}

// Two batches: curl's flow to a.test starts in the first and goes on in the
// second (one flow); python3 talks to a.test too; a flow whose program is not
// known and a per-packet record (ICMP) are "(unknown)".
TEST(TopGrouping, ByProgramFromBatches) {
  ProgramTracker tracker;
  store::Batch b1;
  b1.source_id = 1;
  b1.endpoints = {"", "a.test"};
  b1.flows = {flow(0, 1, store::NameSource::sni, "curl", 2, 1)};
  b1.packets = {packet(0, 0, 1, store::NameSource::sni), packet(1, 0, 1, store::NameSource::sni)};
  tracker.on_batch(b1);
  store::Batch b2;
  b2.source_id = 1;
  b2.endpoints = {"", "a.test", "b.test"};
  b2.flows = {flow(0, 1, store::NameSource::sni, "curl", 1, 3),
              flow(5, 1, store::NameSource::dns, "python3", 1, 0),
              flow(6, 2, store::NameSource::dns, "", 1, 1)};
  b2.packets = {packet(4, 0, 1, store::NameSource::sni), packet(5, 1, 1, store::NameSource::dns),
                packet(6, 2, 2, store::NameSource::dns),
                packet(7, store::kNoFlow, 0, store::NameSource::none)};
  tracker.on_batch(b2);

  Sample a;
  tracker.programs_of("a.test", a);
  EXPECT_EQ(a.programs, (std::vector<std::string>{"curl", "python3"}));
  Sample b;
  tracker.programs_of("b.test", b);
  EXPECT_TRUE(b.programs.empty());

  Options o;
  o.source_names = kSourceNames;
  Model m(o);
  m.start(0);
  m.update(1, tracker.samples(), tracker.rest());
  const auto rows = m.rows({});
  ASSERT_EQ(rows.size(), 3U);
  const Row *curl = find(rows, "curl");
  ASSERT_NE(curl, nullptr);
  EXPECT_EQ(curl->flows, 1);
  EXPECT_EQ(curl->totals.sent_packets, 3U);
  EXPECT_EQ(curl->totals.received_packets, 4U);
  EXPECT_EQ(curl->totals.received_bytes, 4000U);
  EXPECT_EQ(curl->source, "sni");
  EXPECT_EQ(curl->program, "curl");
  const Row *python = find(rows, "python3");
  ASSERT_NE(python, nullptr);
  EXPECT_EQ(python->flows, 1);
  EXPECT_EQ(python->source, "dns");
  const Row *unknown = find(rows, "(unknown)");
  ASSERT_NE(unknown, nullptr);
  EXPECT_EQ(unknown->flows, 1);
  EXPECT_EQ(unknown->totals.sent_packets, 2U); // its flow's one, and the ICMP packet
  EXPECT_EQ(unknown->totals.sent_bytes, 200U);
  EXPECT_EQ(unknown->source, "none+dns");
  // Every flow's packets and every per-packet record are in some row.
  EXPECT_EQ(m.totals().sent_packets, 2U + 1 + 1 + 1 + 1);
  EXPECT_EQ(m.totals().received_packets, 1U + 3 + 1);
}

// A flow whose program comes one batch late moves from "(unknown)" to it.
TEST(TopGrouping, AFlowNamedLateMovesToItsProgram) {
  ProgramTracker tracker;
  store::Batch b1;
  b1.source_id = 1;
  b1.endpoints = {"", "a.test"};
  b1.flows = {flow(3, 1, store::NameSource::sni, "", 2, 1)};
  b1.packets = {packet(3, 0, 1, store::NameSource::sni)};
  tracker.on_batch(b1);
  store::Batch b2 = b1;
  b2.flows = {flow(3, 1, store::NameSource::sni, "curl", 1, 1)};
  b2.packets = {packet(9, 0, 1, store::NameSource::sni)};
  tracker.on_batch(b2);
  tracker.on_batch(b2); // and once more: still one flow
  std::map<std::string, Sample> by_name;
  for (const Sample &s : tracker.samples()) {
    by_name[s.name] = s;
  }
  EXPECT_EQ(by_name.at("curl").flows, 1);
  EXPECT_EQ(by_name.at("curl").totals.sent_packets, 2U);
  EXPECT_EQ(by_name.at("(unknown)").flows, 0);
  EXPECT_EQ(by_name.at("(unknown)").totals.sent_packets, 2U); // counted before it was known
}

// Bounded: past max_programs the busiest are not chosen, the later ones go
// into the rest; past max_names old names are forgotten.
TEST(TopGrouping, ProgramTrackerIsBounded) {
  ProgramOptions po;
  po.max_programs = 2;
  po.max_names = 4;
  ProgramTracker tracker(po);
  for (int i = 0; i < 10; ++i) {
    store::Batch b;
    b.source_id = 1;
    b.endpoints = {"", "n" + std::to_string(i) + ".test"};
    b.flows = {flow(static_cast<std::uint64_t>(i), 1, store::NameSource::sni,
                    "prog" + std::to_string(i), 1, 0)};
    b.packets = {packet(static_cast<std::uint64_t>(i), 0, 1, store::NameSource::sni)};
    tracker.on_batch(b);
  }
  EXPECT_LE(tracker.samples().size(), 3U); // two programs and "(unknown)" at most
  EXPECT_LE(tracker.names_kept(), 4U);
  std::uint64_t packets = tracker.rest().totals.sent_packets;
  for (const Sample &s : tracker.samples()) {
    packets += s.totals.sent_packets;
  }
  EXPECT_EQ(packets, 10U);
  EXPECT_EQ(tracker.rest().flows, 8);
  Sample last;
  tracker.programs_of("n9.test", last);
  EXPECT_EQ(last.programs, (std::vector<std::string>{"prog9"}));
}

} // namespace
} // namespace ta::top
