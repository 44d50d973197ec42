// The Cassandra backend's per-node client metrics: the write and the read
// session's statistics added up per node, and the families they become.
// Expected values are worked out by hand from the inputs.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cassandra_store.hpp"

namespace ta::store {
namespace {

using detail::cassandra::append_node_families;
using detail::cassandra::merge_node_stats;

// Cumulative latency counts per bound (latency_bounds(): 15 bounds), with
// `below_1ms` requests under 1 ms and `over` requests above every bound.
cql::NodeStats node(std::string host, bool up, std::uint64_t requests, std::uint64_t below_1ms,
                    std::uint64_t over) {
  cql::NodeStats n;
  n.host = std::move(host);
  n.up = up;
  n.requests = requests;
  n.retries = requests / 10;
  n.in_flight = 2;
  n.latency_buckets.assign(cql::latency_bounds().size(), below_1ms);
  n.latency_buckets[0] = 0; // none under 0.5 ms
  n.latency_count = below_1ms + over;
  n.latency_sum_seconds = 0.001 * static_cast<double>(below_1ms) + 60.0 * static_cast<double>(over);
  return n;
}

const BackendFamily *family(const std::vector<BackendFamily> &fs, std::string_view name) {
  for (const auto &f : fs) {
    if (f.name == name) {
      return &f;
    }
  }
  return nullptr;
}

const BackendSample *sample(const BackendFamily &f, const std::string &node,
                            const std::string &error = "") {
  for (const auto &s : f.samples) {
    bool node_ok = false;
    bool error_ok = error.empty();
    for (const auto &[k, v] : s.labels) {
      node_ok = node_ok || (k == "node" && v == node);
      error_ok = error_ok || (k == "error" && v == error);
    }
    if (node_ok && error_ok) {
      return &s;
    }
  }
  return nullptr;
}

TEST(CassandraMetrics, WriteAndReadSessionsAddUpPerNode) {
  auto w1 = node("127.0.0.1:9042", true, 100, 90, 1);
  w1.errors = {{"write_timeout", 3}, {"closed", 1}};
  const auto w2 = node("127.0.0.2:9042", false, 10, 10, 0);
  auto r1 = node("127.0.0.1:9042", false, 20, 20, 0);
  r1.errors = {{"read_timeout", 2}, {"closed", 4}};
  const auto r3 = node("127.0.0.3:9042", true, 5, 5, 0); // known to the reader only
  const auto merged = merge_node_stats({w1, w2}, {r1, r3});
  ASSERT_EQ(merged.size(), 3U);
  EXPECT_EQ(merged[0].host, "127.0.0.1:9042");
  EXPECT_TRUE(merged[0].up); // the write session's view
  EXPECT_EQ(merged[0].requests, 120U);
  EXPECT_EQ(merged[0].retries, 12U);
  EXPECT_EQ(merged[0].in_flight, 4U);
  EXPECT_EQ(merged[0].latency_count, 111U);
  EXPECT_EQ(merged[0].latency_buckets[1], 110U);
  EXPECT_EQ(merged[0].latency_buckets.back(), 110U);
  EXPECT_DOUBLE_EQ(merged[0].latency_sum_seconds, 0.11 + 60.0);
  const std::vector<std::pair<std::string, std::uint64_t>> errors{
      {"write_timeout", 3}, {"closed", 5}, {"read_timeout", 2}};
  EXPECT_EQ(merged[0].errors, errors);
  EXPECT_FALSE(merged[1].up);
  EXPECT_EQ(merged[1].requests, 10U);
  EXPECT_EQ(merged[2].host, "127.0.0.3:9042");
  EXPECT_TRUE(merged[2].up);

  std::vector<BackendFamily> out;
  append_node_families(merged, out);
  const auto *up = family(out, "traffic_cassandra_client_node_up");
  ASSERT_NE(up, nullptr);
  EXPECT_EQ(up->type, BackendFamily::Type::gauge);
  ASSERT_EQ(up->samples.size(), 3U);
  EXPECT_EQ(sample(*up, "127.0.0.1:9042")->value, 1);
  EXPECT_EQ(sample(*up, "127.0.0.2:9042")->value, 0);
  const auto *req = family(out, "traffic_cassandra_client_requests_total");
  ASSERT_NE(req, nullptr);
  EXPECT_EQ(req->type, BackendFamily::Type::counter);
  EXPECT_EQ(sample(*req, "127.0.0.1:9042")->value, 120);
  const auto *inflight = family(out, "traffic_cassandra_client_in_flight");
  ASSERT_NE(inflight, nullptr);
  EXPECT_EQ(sample(*inflight, "127.0.0.1:9042")->value, 4);
  const auto *errs = family(out, "traffic_cassandra_client_errors_total");
  ASSERT_NE(errs, nullptr);
  EXPECT_EQ(sample(*errs, "127.0.0.1:9042", "closed")->value, 5);
  EXPECT_EQ(sample(*errs, "127.0.0.1:9042", "read_timeout")->value, 2);
  EXPECT_EQ(sample(*errs, "127.0.0.2:9042", "closed"), nullptr);
  ASSERT_NE(family(out, "traffic_cassandra_client_retries_total"), nullptr);
  // Latency: a bucket per bound, then +Inf holding every request, the one
  // over 30 s included.
  const auto *lat = family(out, "traffic_cassandra_client_request_duration_seconds");
  ASSERT_NE(lat, nullptr);
  EXPECT_EQ(lat->type, BackendFamily::Type::histogram);
  const auto *h = sample(*lat, "127.0.0.1:9042");
  ASSERT_NE(h, nullptr);
  ASSERT_EQ(h->bucket_bounds.size(), cql::latency_bounds().size());
  ASSERT_EQ(h->buckets.size(), h->bucket_bounds.size() + 1);
  EXPECT_EQ(h->buckets[0], 0U);
  EXPECT_EQ(h->buckets[h->bucket_bounds.size() - 1], 110U);
  EXPECT_EQ(h->buckets.back(), 111U);
  EXPECT_DOUBLE_EQ(h->sum, 60.11);
}

TEST(CassandraMetrics, NoNodesNoSamplesButEveryFamily) {
  std::vector<BackendFamily> out;
  append_node_families(merge_node_stats({}, {}), out);
  EXPECT_EQ(out.size(), 7U); // with traffic_cassandra_client_routed_total
  for (const auto &f : out) {
    EXPECT_EQ(f.name.rfind("traffic_cassandra_client_", 0), 0U) << f.name;
    EXPECT_TRUE(f.samples.empty()) << f.name;
  }
}

} // namespace
} // namespace ta::store
