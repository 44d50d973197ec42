// The registry as a whole: series and values through render(), the HTTP
// endpoint on 127.0.0.1, and promtool's verdict on the exposition.
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <future>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "ta/metrics/metrics.hpp"

#include "promtool.hpp"

namespace ta::metrics {
namespace {

using namespace std::string_literals;

Options quiet_options() {
  Options o;
  o.listen = "";
  o.tick_thread = false;
  return o;
}

std::unique_ptr<Metrics> make(const Options &o) {
  auto m = Metrics::open(o);
  EXPECT_TRUE(m) << m.status().message();
  return m ? std::move(m).value() : nullptr;
}

// A batch with `counts[i]` records of `bytes` each for endpoint name i.
store::Batch batch_of(const std::vector<std::string> &names, const std::vector<int> &counts,
                      std::uint32_t bytes = 100) {
  store::Batch b;
  b.endpoints = names;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    for (int k = 0; k < counts[i]; ++k) {
      store::PacketRecord r;
      r.frame = b.packets.size();
      r.bytes = bytes;
      r.endpoint = static_cast<std::uint32_t>(i);
      b.packets.push_back(r);
    }
  }
  return b;
}

// The value of the sample whose line starts with `series` + ' ', if any.
std::optional<double> value(const std::string &text, const std::string &series) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
        line[series.size()] == ' ') {
      return std::stod(line.substr(series.size() + 1));
    }
  }
  return std::nullopt;
}

std::size_t count_lines_starting(const std::string &text, const std::string &prefix) {
  std::istringstream in(text);
  std::string line;
  std::size_t n = 0;
  while (std::getline(in, line)) {
    n += line.compare(0, prefix.size(), prefix) == 0 ? 1 : 0;
  }
  return n;
}

std::string escaped_label(const std::string &name) {
  return "traffic_endpoint_writes_total{endpoint=\"" + name + "\"}";
}

TEST(Metrics, PreCreatesEveryOutcomeAndReasonAtZero) {
  auto m = make(quiet_options());
  const std::string text = m->render();
  for (std::size_t i = 0; i < static_cast<std::size_t>(attribute::Outcome::count_); ++i) {
    const std::string name(to_string(static_cast<attribute::Outcome>(i)));
    EXPECT_EQ(value(text, "traffic_packets_total{outcome=\"" + name + "\"}"), 0.0) << name;
  }
  for (std::size_t i = 1; i < static_cast<std::size_t>(dns::DnsError::count_); ++i) {
    const std::string name(to_string(static_cast<dns::DnsError>(i)));
    EXPECT_EQ(value(text, "traffic_dns_errors_total{reason=\"" + name + "\"}"), 0.0) << name;
  }
  EXPECT_EQ(count_lines_starting(text, "traffic_dns_errors_total{reason=\"ok\"}"), 0U);
  for (const char *s :
       {"traffic_frames_total", "traffic_dns_responses_total", "traffic_dns_answers_learnt_total",
        "traffic_dns_table_addresses", "traffic_dns_table_evictions_total",
        "traffic_unresolved_packets_total", "traffic_local_hosts_learnt_total",
        "traffic_local_host_evictions_total", "traffic_local_hosts",
        "traffic_capture_files_ingested_total", "traffic_store_errors_total",
        "traffic_store_records_pending", "traffic_store_batch_seconds_count"}) {
    EXPECT_EQ(value(text, s), 0.0) << s;
  }
  EXPECT_EQ(count_lines_starting(text, "traffic_analyzer_build_info{version=\""), 1U);
  EXPECT_NE(text.find("# TYPE traffic_store_batch_seconds histogram"), std::string::npos);
  EXPECT_EQ(value(text, "traffic_store_batch_seconds_bucket{le=\"0.001\"}"), 0.0);
  EXPECT_EQ(value(text, "traffic_store_batch_seconds_bucket{le=\"10\"}"), 0.0);
}

TEST(Metrics, CountsSealedAndWrittenRecordsPerEndpoint) {
  auto m = make(quiet_options());
  const auto b = batch_of({"a.example", "", "b.example", "learnt.only"}, {3, 2, 1, 0});
  m->on_batch_sealed(b);
  std::string text = m->render();
  EXPECT_EQ(value(text, "traffic_endpoint_packets_total{endpoint=\"a.example\"}"), 3.0);
  EXPECT_EQ(value(text, "traffic_endpoint_bytes_total{endpoint=\"a.example\"}"), 300.0);
  EXPECT_EQ(value(text, "traffic_endpoint_packets_total{endpoint=\"(unresolved)\"}"), 2.0);
  EXPECT_EQ(value(text, "traffic_endpoint_packets_total{endpoint=\"b.example\"}"), 1.0);
  EXPECT_EQ(value(text, escaped_label("a.example")), 0.0); // sealed, not yet written
  EXPECT_EQ(count_lines_starting(text, "traffic_endpoint_packets_total{endpoint=\"learnt.only"),
            0U);

  m->on_batch_written(b, 0.02);
  m->on_batch_written(batch_of({"b.example", "a.example"}, {4, 1}), 3.0);
  text = m->render();
  EXPECT_EQ(value(text, escaped_label("a.example")), 4.0);
  EXPECT_EQ(value(text, escaped_label("b.example")), 5.0);
  EXPECT_EQ(value(text, escaped_label("(unresolved)")), 2.0);
  EXPECT_EQ(value(text, "traffic_store_batch_seconds_count"), 2.0);
  EXPECT_DOUBLE_EQ(*value(text, "traffic_store_batch_seconds_sum"), 3.02);
  EXPECT_EQ(value(text, "traffic_store_batch_seconds_bucket{le=\"0.025\"}"), 1.0);
  EXPECT_EQ(value(text, "traffic_store_batch_seconds_bucket{le=\"5\"}"), 2.0);

  m->on_store_error();
  m->set_records_pending(12345);
  m->on_file_ingested();
  m->on_file_ingested();
  text = m->render();
  EXPECT_EQ(value(text, "traffic_store_errors_total"), 1.0);
  EXPECT_EQ(value(text, "traffic_store_records_pending"), 12345.0);
  EXPECT_EQ(value(text, "traffic_capture_files_ingested_total"), 2.0);
}

TEST(Metrics, ThroughputIsOneMinuteEwmaOfWrites) {
  auto m = make(quiet_options());
  m->on_batch_written(batch_of({"a.example"}, {50}), 0.01);
  m->on_batch_written(batch_of({"a.example"}, {50}), 0.01);
  const std::string series = "traffic_endpoint_write_throughput{endpoint=\"a.example\"}";
  EXPECT_EQ(value(m->render(), series), 0.0); // no tick yet
  m->tick_now();
  EXPECT_DOUBLE_EQ(*value(m->render(), series), 20.0); // 100 writes / 5 s
  m->tick_now();
  const double alpha = 1.0 - std::exp(-5.0 / 60.0);
  EXPECT_NEAR(*value(m->render(), series), 20.0 * (1.0 - alpha), 1e-9);
}

TEST(Metrics, BoundsEndpointLabelsAndLegacyNames) {
  Options o = quiet_options();
  o.max_endpoints = 3;
  o.legacy_names = true;
  auto m = make(o);
  std::vector<std::string> names;
  std::vector<int> counts;
  for (int i = 0; i < 10; ++i) {
    names.push_back("host" + std::to_string(i) + ".example");
    counts.push_back(i + 1);
  }
  names.emplace_back("");
  counts.push_back(7);
  const auto b = batch_of(names, counts);
  m->on_batch_sealed(b);
  m->on_batch_written(b, 0.1);
  m->on_batch_written(batch_of({"host9.example", "host0.example"}, {1, 1}), 0.1); // again
  m->tick_now();
  const std::string text = m->render();
  EXPECT_EQ(count_lines_starting(text, "traffic_endpoint_writes_total{"), 5U); // 3 + 2 special
  EXPECT_EQ(value(text, escaped_label("host0.example")), 2.0);
  EXPECT_EQ(value(text, escaped_label("host2.example")), 3.0);
  EXPECT_EQ(value(text, escaped_label("(other)")), 4.0 + 5 + 6 + 7 + 8 + 9 + 10 + 1);
  EXPECT_EQ(value(text, escaped_label("(unresolved)")), 7.0);
  EXPECT_EQ(value(text, "host0_example_writes_total"), 2.0);
  EXPECT_EQ(value(text, "host2_example_writes_total"), 3.0);
  EXPECT_EQ(value(text, "other_writes_total"), 50.0);
  EXPECT_EQ(value(text, "unresolved_writes_total"), 7.0);
  EXPECT_EQ(value(text, "unresolved_write_throughput"), 7.0 / 5.0);
  EXPECT_EQ(value(text, "other_write_throughput"), 10.0);
  EXPECT_EQ(count_lines_starting(text, "host3_example"), 0U);
  EXPECT_NE(text.find("# TYPE host1_example_writes_total counter"), std::string::npos);
  EXPECT_NE(text.find("# TYPE host1_example_write_throughput gauge"), std::string::npos);
}

TEST(Metrics, LegacyNamesMergeAliasesAndSkipUnusableOnes) {
  Options o = quiet_options();
  o.legacy_names = true;
  auto m = make(o);
  // a-b and a.b share a_b; "traffic_endpoint" would be our own family; "."
  // gives "__writes_total", reserved; "9x" gets the legacy "_" prefix.
  const auto b = batch_of({"a-b", "a.b", "traffic_endpoint", ".", "9x"}, {1, 2, 3, 4, 5});
  m->on_batch_written(b, 0.1);
  m->tick_now();
  const std::string text = m->render();
  EXPECT_EQ(value(text, "a_b_writes_total"), 3.0);
  EXPECT_DOUBLE_EQ(*value(text, "a_b_write_throughput"), 3.0 / 5.0);
  EXPECT_EQ(value(text, "_9x_writes_total"), 5.0);
  EXPECT_EQ(value(text, escaped_label("traffic_endpoint")), 3.0);
  EXPECT_EQ(value(text, "traffic_endpoint_writes_total"), std::nullopt);
  EXPECT_EQ(count_lines_starting(text, "__writes_total"), 0U);
  EXPECT_EQ(value(text, escaped_label(".")), 4.0);
}

TEST(Metrics, WeirdHostnamesBecomeValidLabels) {
  auto m = make(quiet_options());
  const std::string weird = "q\"uote\\back\nline\xff\0nul"s;
  const auto b = batch_of({weird, "(other)", "(unresolved)"}, {2, 1, 1});
  m->on_batch_written(b, 0.1);
  const std::string text = m->render();
  // utf8_label: \xff and NUL as text; then the serializer escapes \ " and \n.
  EXPECT_EQ(value(text, escaped_label(R"(q\"uote\\back\nline\\xFF\\x00nul)")), 2.0);
  EXPECT_EQ(value(text, escaped_label(R"(\\x28other))")), 1.0);
  EXPECT_EQ(value(text, escaped_label(R"(\\x28unresolved))")), 1.0);
  EXPECT_EQ(value(text, escaped_label("(other)")), std::nullopt);
}

TEST(Metrics, PublishAddsIncreasesOfCumulativeStats) {
  auto m = make(quiet_options());
  attribute::Stats st;
  st.frames = 100;
  st.outcomes[static_cast<std::size_t>(attribute::Outcome::counted)] = 60;
  st.outcomes[static_cast<std::size_t>(attribute::Outcome::dns)] = 40;
  st.dns_responses = 20;
  st.dns_answers_learnt = 30;
  st.dns_errors[static_cast<std::size_t>(dns::DnsError::pointer_loop)] = 2;
  st.unresolved = 5;
  st.local_hosts_learnt = 1;
  st.local_hosts_evicted = 2;
  st.local_hosts = 7;
  m->publish(st, 25, 3);
  st.frames = 150;
  st.local_hosts_evicted = 5;
  st.local_hosts = 6;
  st.outcomes[static_cast<std::size_t>(attribute::Outcome::counted)] = 110;
  m->publish(st, 24, 4);
  const std::string text = m->render();
  EXPECT_EQ(value(text, "traffic_frames_total"), 150.0);
  EXPECT_EQ(value(text, "traffic_packets_total{outcome=\"counted\"}"), 110.0);
  EXPECT_EQ(value(text, "traffic_packets_total{outcome=\"dns\"}"), 40.0);
  EXPECT_EQ(value(text, "traffic_dns_responses_total"), 20.0);
  EXPECT_EQ(value(text, "traffic_dns_answers_learnt_total"), 30.0);
  EXPECT_EQ(value(text, "traffic_dns_errors_total{reason=\"pointer_loop\"}"), 2.0);
  EXPECT_EQ(value(text, "traffic_unresolved_packets_total"), 5.0);
  EXPECT_EQ(value(text, "traffic_local_hosts_learnt_total"), 1.0);
  EXPECT_EQ(value(text, "traffic_local_host_evictions_total"), 5.0); // a counter of the total
  EXPECT_EQ(value(text, "traffic_local_hosts"), 6.0);                // a level: the latest
  EXPECT_EQ(value(text, "traffic_dns_table_addresses"), 24.0);
  EXPECT_EQ(value(text, "traffic_dns_table_evictions_total"), 4.0);
}

// Process mapping's flows per outcome: absent until first set (modes that
// map no program export no such family), then cumulative like publish().
TEST(Metrics, ProcessFlowsAppearWhenFirstSetAndAddIncreases) {
  auto m = make(quiet_options());
  EXPECT_EQ(m->render().find("traffic_process_flows_total"), std::string::npos);
  for (const char *o : {"mapped", "no_socket", "other_namespace", "no_permission"}) {
    m->set_process_flows(o, 0);
  }
  std::string text = m->render();
  EXPECT_NE(text.find("# TYPE traffic_process_flows_total counter"), std::string::npos);
  for (const char *o : {"mapped", "no_socket", "other_namespace", "no_permission"}) {
    EXPECT_EQ(value(text, std::string("traffic_process_flows_total{outcome=\"") + o + "\"}"), 0.0)
        << o;
  }
  m->set_process_flows("mapped", 3);
  m->set_process_flows("no_socket", 1);
  m->set_process_flows("mapped", 5);
  text = m->render();
  EXPECT_EQ(value(text, "traffic_process_flows_total{outcome=\"mapped\"}"), 5.0);
  EXPECT_EQ(value(text, "traffic_process_flows_total{outcome=\"no_socket\"}"), 1.0);
  EXPECT_EQ(value(text, "traffic_process_flows_total{outcome=\"no_permission\"}"), 0.0);
}

// Flow naming: received traffic per endpoint (not a write), names by source,
// the flow table, encrypted DNS, the parsers' outcomes.
TEST(Metrics, CountsReceivedTrafficAndFlowNaming) {
  auto m = make(quiet_options());
  store::Batch b = batch_of({"", "site.test"}, {0, 2});
  store::PacketRecord r = b.packets.back();
  r.direction = store::Direction::received;
  r.bytes = 1500;
  b.packets.push_back(r);
  b.packets.push_back(r);
  b.packets.push_back(r);
  m->on_batch_sealed(b);
  m->on_batch_written(b, 0.01);
  attribute::Stats st;
  st.names[static_cast<std::size_t>(store::NameSource::sni)] = 5;
  st.names[static_cast<std::size_t>(store::NameSource::dns)] = 2;
  st.flows_active = 7;
  st.flows_evicted = 3;
  st.encrypted_dns_flows[static_cast<std::size_t>(attribute::EncryptedDns::doh)] = 1;
  st.naming_outcomes[static_cast<std::size_t>(flow::NamingOutcome::quic_unsupported_version)] = 4;
  st.quic_packet_errors[0] = 6;
  m->publish(st, 0, 0);
  const std::string text = m->render();
  EXPECT_EQ(value(text, "traffic_endpoint_packets_total{endpoint=\"site.test\"}"), 2.0);
  EXPECT_EQ(value(text, "traffic_endpoint_received_packets_total{endpoint=\"site.test\"}"), 3.0);
  EXPECT_EQ(value(text, "traffic_endpoint_received_bytes_total{endpoint=\"site.test\"}"), 4500.0);
  EXPECT_EQ(value(text, escaped_label("site.test")), 2.0); // rows written: sent packets only
  EXPECT_EQ(value(text, "traffic_names_total{source=\"sni\"}"), 5.0);
  EXPECT_EQ(value(text, "traffic_names_total{source=\"dns\"}"), 2.0);
  EXPECT_EQ(value(text, "traffic_names_total{source=\"quic\"}"), 0.0);
  EXPECT_EQ(value(text, "traffic_flows_active"), 7.0);
  EXPECT_EQ(value(text, "traffic_flow_evictions_total"), 3.0);
  EXPECT_EQ(value(text, "traffic_encrypted_dns_flows_total{kind=\"doh\"}"), 1.0);
  EXPECT_EQ(value(text, "traffic_encrypted_dns_flows_total{kind=\"dot\"}"), 0.0);
  EXPECT_EQ(value(text, "traffic_flow_naming_total{outcome=\"quic_unsupported_version\"}"), 4.0);
  EXPECT_EQ(value(text, "traffic_quic_packet_errors_total{reason=\"" +
                            std::string(flow::quic_packet_error_name(0)) + "\"}"),
            6.0);
}

TEST(Metrics, CaptureStatsPerInterfaceAreCumulative) {
  auto m = make(quiet_options());
  m->set_capture_stats("eth0", 100, 1, 0);
  m->set_capture_stats("lo", 10, 0, 0);
  m->set_capture_stats("eth0", 250, 3, 2);
  m->set_capture_stats("eth0", 50, 0, 0); // restarted: all of it counts
  const std::string text = m->render();
  EXPECT_EQ(value(text, "traffic_capture_received_total{interface=\"eth0\"}"), 300.0);
  EXPECT_EQ(value(text, "traffic_capture_dropped_total{interface=\"eth0\"}"), 3.0);
  EXPECT_EQ(value(text, "traffic_capture_interface_dropped_total{interface=\"eth0\"}"), 2.0);
  EXPECT_EQ(value(text, "traffic_capture_received_total{interface=\"lo\"}"), 10.0);
}

// True if `fn` returns within a bound far below what a wait for the next
// event (an hour-long tick, a blocked accept loop) would take.
template <class Fn> bool returns_without_waiting(Fn fn) {
  auto done = std::async(std::launch::async, std::move(fn));
  return done.wait_for(std::chrono::seconds(60)) == std::future_status::ready;
}

TEST(Metrics, DestructorStopsTheTickThreadPromptly) {
  Options o = quiet_options();
  o.tick_thread = true;
  o.tick = std::chrono::hours(1);
  auto m = make(o);
  EXPECT_TRUE(returns_without_waiting([&m] { m.reset(); })); // not after the hour-long tick
}

TEST(Metrics, TickThreadUpdatesThroughput) {
  Options o = quiet_options();
  o.tick_thread = true;
  o.tick = std::chrono::seconds(1);
  auto m = make(o);
  m->on_batch_written(batch_of({"a.example"}, {3}), 0.1);
  const std::string series = "traffic_endpoint_write_throughput{endpoint=\"a.example\"}";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (value(m->render(), series) == 0.0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_DOUBLE_EQ(*value(m->render(), series), 3.0);
}

TEST(Metrics, ConcurrentUseKeepsEveryCount) {
  Options o = quiet_options();
  o.max_endpoints = 50;
  o.legacy_names = true;
  auto m = make(o);
  std::vector<std::string> names;
  names.reserve(80);
  for (int i = 0; i < 80; ++i) {
    names.push_back("h" + std::to_string(i));
  }
  const auto b = batch_of(names, std::vector<int>(names.size(), 2));
  constexpr int kRounds = 200;
  std::atomic<bool> done{false};
  std::thread sealer([&] {
    for (int i = 0; i < kRounds; ++i) {
      m->on_batch_sealed(b);
    }
  });
  std::thread writer([&] {
    for (int i = 0; i < kRounds; ++i) {
      m->on_batch_written(b, 0.001);
    }
  });
  std::thread scraper([&] {
    while (!done) {
      m->tick_now();
      (void)m->render();
    }
  });
  sealer.join();
  writer.join();
  done = true;
  scraper.join();
  const std::string text = m->render();
  EXPECT_EQ(value(text, escaped_label("h0")), 2.0 * kRounds);
  EXPECT_EQ(value(text, escaped_label("(other)")), 30 * 2.0 * kRounds);
  EXPECT_EQ(value(text, "traffic_endpoint_packets_total{endpoint=\"(other)\"}"),
            30 * 2.0 * kRounds);
}

TEST(Metrics, RejectsBadListenAddresses) {
  for (const char *bad : {"localhost:9100", "9100", "0.0.0.0:99999"}) {
    Options o = quiet_options();
    o.listen = bad;
    const auto m = Metrics::open(o);
    ASSERT_FALSE(m) << bad;
    const Status &st = m.status();
    EXPECT_TRUE(st.is_invalid_argument()) << st.message();
    EXPECT_EQ(st.message().rfind("metrics: ", 0), 0U) << st.message();
    EXPECT_NE(st.message().find(bad), std::string::npos) << st.message();
    EXPECT_EQ(st.message().find("--"), std::string::npos) << st.message(); // no flag names
  }
  Options o = quiet_options();
  o.tick = std::chrono::seconds(0);
  const auto m = Metrics::open(o);
  ASSERT_FALSE(m);
  EXPECT_TRUE(m.status().is_invalid_argument());
  EXPECT_FALSE(m.status().message().empty());
}

TEST(Metrics, ANonPositiveTickIsRefused) {
  Options o = quiet_options();
  o.tick = std::chrono::seconds(0);
  const auto m = Metrics::open(o);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.status().message(), "metrics: the throughput tick must be positive");
}

// A listening TCP socket on 127.0.0.1 with a kernel-chosen port.
struct Listener {
  int fd = -1;
  std::uint16_t port = 0;
  Listener() {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    if (bind(fd, reinterpret_cast<sockaddr *>(&sa), len) == 0 && listen(fd, 1) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr *>(&sa), &len) == 0) {
      port = ntohs(sa.sin_port);
    }
  }
  ~Listener() { close(fd); }
  Listener(const Listener &) = delete;
  Listener &operator=(const Listener &) = delete;
};

TEST(Metrics, OpenFailsClearlyWhenThePortIsInUse) {
  const Listener busy;
  ASSERT_NE(busy.port, 0);
  Options o = quiet_options();
  o.listen = "127.0.0.1:" + std::to_string(busy.port);
  const auto m = Metrics::open(o);
  ASSERT_FALSE(m);
  EXPECT_TRUE(m.status().is_unavailable()) << status_code_name(m.status().code());
  EXPECT_EQ(m.status().message(), "metrics: " + o.listen + " is already in use");
}

TEST(Metrics, ListensOnIpv6) {
  Options o = quiet_options();
  o.listen = "[::1]:0";
  auto m = Metrics::open(o);
  ASSERT_TRUE(m) << m.status().message();
  EXPECT_EQ(m.value()->bound_address().rfind("[::1]:", 0), 0U) << m.value()->bound_address();
  // Served there: web_test.cpp (WebServer.ServesExactlyTheRenderedTextOverIpv6).
}

// GET `path` over a plain socket; the whole response (headers and body).
std::string http_get(std::uint16_t port, const std::string &path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr *>(&sa), sizeof sa) == 0) {
    const std::string request =
        "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (send(fd, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size())) {
      char buf[4096];
      ssize_t n = 0;
      while ((n = recv(fd, buf, sizeof buf, 0)) > 0) {
        response.append(buf, static_cast<std::size_t>(n));
      }
    }
  }
  close(fd);
  return response;
}

TEST(Metrics, ServesMetricsOverHttp) {
  Options o = quiet_options();
  o.listen = "127.0.0.1:0";
  auto m = make(o);
  ASSERT_TRUE(m);
  const std::string bound = m->bound_address();
  ASSERT_EQ(bound.rfind("127.0.0.1:", 0), 0U) << bound;
  const auto port = static_cast<std::uint16_t>(std::stoi(bound.substr(bound.find(':') + 1)));
  ASSERT_NE(port, 0);
  m->on_batch_written(batch_of({"served.example"}, {7}), 0.01);

  const std::string response = http_get(port, "/metrics");
  ASSERT_EQ(response.rfind("HTTP/1.", 0), 0U) << response;
  EXPECT_NE(response.find(" 200 "), std::string::npos) << response.substr(0, 200);
  const auto body_at = response.find("\r\n\r\n");
  ASSERT_NE(body_at, std::string::npos);
  const std::string body = response.substr(body_at + 4);
  EXPECT_EQ(value(body, escaped_label("served.example")), 7.0);

  // The same port is taken now: a second registry cannot have it.
  Options again = quiet_options();
  again.listen = bound;
  const auto second = Metrics::open(again);
  ASSERT_FALSE(second);
  EXPECT_TRUE(second.status().is_unavailable()) << second.status().message();

  if (have_promtool()) {
    const auto [status, out] = promtool_check_metrics(body);
    EXPECT_EQ(status, 0) << out;
    EXPECT_EQ(out, "");
  }

  // Stopping does not wait for a connection or a poll timeout.
  EXPECT_TRUE(returns_without_waiting([&m] { m.reset(); }));
}

TEST(Metrics, PromtoolAcceptsTheExposition) {
  if (!have_promtool()) {
    GTEST_SKIP() << "promtool not installed (Debian package prometheus)";
  }
  Options o = quiet_options();
  o.legacy_names = true;
  o.max_endpoints = 20;
  auto m = make(o);
  std::vector<std::string> names = {"q\"uote\\back\nline\xff\0nul"s,
                                    "\xc3\x28\xa0\xa1"s,
                                    "",
                                    "(other)",
                                    "1e100.net",
                                    "traffic_endpoint",
                                    ".",
                                    "b\xC3\xBC\x63her.de",
                                    std::string(255, 'x')};
  for (int i = 0; i < 40; ++i) {
    names.push_back("h" + std::to_string(i) + ".example");
  }
  const auto b = batch_of(names, std::vector<int>(names.size(), 3));
  m->on_batch_sealed(b);
  m->on_batch_written(b, 0.004);
  m->tick_now();
  attribute::Stats st;
  st.frames = 10;
  m->publish(st, 1, 0);
  m->set_capture_stats("eth0", 10, 1, 0);
  m->set_capture_stats("we\xffird", 10, 1, 0);
  const std::string text = m->render();
  ASSERT_EQ(value(text, escaped_label("(other)")),
            3.0 * static_cast<double>(names.size() - 20 - 1));
  const auto [status, out] = promtool_check_metrics(text);
  EXPECT_EQ(status, 0) << out << "\n--- exposition:\n" << text;
  // promtool lints too (e.g. counters without _total): it prints findings
  // with status 0 as well; we want none.
  EXPECT_EQ(out, "") << out;
}

} // namespace
} // namespace ta::metrics
