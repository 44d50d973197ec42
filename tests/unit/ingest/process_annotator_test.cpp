// The process annotator over a fake /proc tree (process::Options proc_root,
// local_addresses, clock): flows mapped from either end, remembered after
// their process is gone, counted once per flow under their final outcome,
// deferred by the rescan budget and then mapped at the next batch. The
// /proc/net lines are written as a little-endian kernel prints them.
#include <bit>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>

#include <gtest/gtest.h>

#include "ta/ingest/process_annotator.hpp"

namespace ta::ingest {
namespace {

namespace fs = std::filesystem;
using process::Outcome;

constexpr const char *kHeader = "  sl  local_address rem_address   st tx_queue rx_queue tr "
                                "tm->when retrnsmt   uid  timeout inode\n";

std::string line(int sl, const char *local, const char *remote, const char *state,
                 const char *inode) {
  return "   " + std::to_string(sl) + ": " + local + " " + remote + " " + state +
         " 00000000:00000000 00:00000000 00000000     0        0 " + inode +
         " 1 0000000000000000 100 0 0 10 0\n";
}

IpAddress ip(const char *text) {
  return *IpAddress::parse(text);
}

store::FlowRecord flow(std::uint64_t first_frame, std::uint8_t protocol, const char *client,
                       std::uint16_t client_port, const char *endpoint,
                       std::uint16_t endpoint_port) {
  store::FlowRecord f;
  f.origin_source = 1;
  f.first_frame = first_frame;
  f.protocol = protocol;
  f.client = ip(client);
  f.client_port = client_port;
  f.endpoint_address = ip(endpoint);
  f.endpoint_port = endpoint_port;
  f.sent_packets = 1;
  return f;
}

class AnnotatorTest : public ::testing::Test {
protected:
  void SetUp() override {
    if constexpr (std::endian::native != std::endian::little) {
      GTEST_SKIP() << "the fixtures are written as a little-endian kernel prints them";
    }
    std::string templ = (fs::temp_directory_path() / "ta-annotator-XXXXXX").string();
    ASSERT_NE(::mkdtemp(templ.data()), nullptr);
    root_ = templ;
    fs::create_directories(root_ / "net");
    sockets_ = line(0, "0100007F:1F90", "00000000:0000", "0A", "1001") + // 127.0.0.1:8080 listen
               line(1, "0100007F:C350", "0100007F:1F90", "01", "1002") + // :50000 -> :8080
               line(2, "1401A8C0:01BB", "0200000A:D431", "01", "1003");  // 192.168.1.20:443
    write_sockets();
    process(100, "curl\n", {{"3", "socket:[1002]"}});
    process(300, "nginx\n", {{"4", "socket:[1003]"}});
    process(500, "srv\n", {{"9", "socket:[1001]"}});
  }
  void TearDown() override {
    if (!root_.empty()) {
      fs::remove_all(root_);
    }
  }

  void write(const std::string &rel, const std::string &text) {
    std::ofstream out(root_ / rel, std::ios::binary);
    out << text;
  }
  void write_sockets() { write("net/tcp", std::string(kHeader) + sockets_); }
  void process(int pid, const std::string &comm,
               std::initializer_list<std::pair<const char *, const char *>> fds) {
    const fs::path dir = root_ / std::to_string(pid);
    fs::create_directories(dir / "fd");
    write(std::to_string(pid) + "/comm", comm);
    for (const auto &[fd, target] : fds) {
      fs::create_symlink(target, dir / "fd" / fd);
    }
  }
  process::Options options() {
    process::Options o;
    o.proc_root = root_.string();
    o.local_addresses = std::vector<IpAddress>{ip("127.0.0.1"), ip("192.168.1.20")};
    o.clock = [this] { return now_; };
    return o;
  }
  static void expect_counts(const ProcessAnnotator &a, std::uint64_t mapped,
                            std::uint64_t no_socket, std::uint64_t other_namespace) {
    EXPECT_EQ(a.flows(Outcome::mapped), mapped);
    EXPECT_EQ(a.flows(Outcome::no_socket), no_socket);
    EXPECT_EQ(a.flows(Outcome::other_namespace), other_namespace);
    EXPECT_EQ(a.flows(Outcome::no_permission), 0U);
  }

  fs::path root_;
  std::string sockets_;
  std::chrono::steady_clock::time_point now_{std::chrono::seconds(1000)};
};

TEST_F(AnnotatorTest, MapsTheClientOrTheServerEndAndCountsEachFlowOnce) {
  ProcessAnnotator a(options());
  store::Batch b;
  b.flows.push_back(flow(0, 6, "127.0.0.1", 50000, "127.0.0.1", 8080));  // this machine's client
  b.flows.push_back(flow(1, 6, "10.0.0.2", 54321, "192.168.1.20", 443)); // this machine serves
  b.flows.push_back(flow(2, 6, "127.0.0.1", 50001, "127.0.0.1", 8080));  // client socket gone
  b.flows.push_back(flow(3, 17, "10.1.1.1", 1000, "10.2.2.2", 53));      // not this machine
  b.flows.push_back(flow(4, 1, "127.0.0.1", 0, "127.0.0.1", 0));         // ICMP: not looked up
  a.annotate(b);
  EXPECT_EQ(b.flows[0].pid, 100);
  EXPECT_EQ(b.flows[0].program, "curl");
  EXPECT_EQ(b.flows[1].pid, 300);
  EXPECT_EQ(b.flows[1].program, "nginx");
  // Its client is this machine's and gone: not the listener's program.
  EXPECT_EQ(b.flows[2].program, "");
  EXPECT_EQ(b.flows[3].program, "");
  EXPECT_EQ(b.flows[4].program, "");
  expect_counts(a, 2, 1, 1);
  EXPECT_EQ(a.mapper_counters().rescans, 1U);
  EXPECT_EQ(a.pending(), 0U);

  // The next batch: the same flows (by identity), and curl has exited. The
  // program is remembered; nothing is asked or counted again.
  fs::remove_all(root_ / "100");
  sockets_ = line(0, "0100007F:1F90", "00000000:0000", "0A", "1001");
  write_sockets();
  now_ += std::chrono::seconds(1);
  store::Batch next;
  next.flows.push_back(flow(0, 6, "127.0.0.1", 50000, "127.0.0.1", 8080));
  next.flows.push_back(flow(2, 6, "127.0.0.1", 50001, "127.0.0.1", 8080));
  next.flows.push_back(flow(3, 17, "10.1.1.1", 1000, "10.2.2.2", 53));
  a.annotate(next);
  EXPECT_EQ(next.flows[0].pid, 100);
  EXPECT_EQ(next.flows[0].program, "curl");
  EXPECT_EQ(next.flows[1].program, "");
  expect_counts(a, 2, 1, 1);
  EXPECT_EQ(a.mapper_counters().rescans, 1U);
}

TEST_F(AnnotatorTest, ADeferredFlowIsAskedAgainAtTheNextBatchAndCountedOnce) {
  ProcessAnnotator a(options());
  store::Batch first;
  first.flows.push_back(flow(0, 6, "127.0.0.1", 50000, "127.0.0.1", 8080));
  a.annotate(first);
  EXPECT_EQ(first.flows[0].program, "curl");
  EXPECT_EQ(a.mapper_counters().rescans, 1U);

  // 50 ms later (a batch sealed early, under load) a new flow whose socket
  // the last snapshot predates: the rescan budget (100 ms) is spent.
  sockets_ += line(3, "0100007F:C352", "0100007F:1F90", "01", "1010");
  write_sockets();
  process(600, "python3\n", {{"5", "socket:[1010]"}});
  now_ += std::chrono::milliseconds(50);
  store::Batch second;
  second.flows.push_back(flow(7, 6, "127.0.0.1", 50002, "127.0.0.1", 8080));
  a.annotate(second);
  EXPECT_EQ(second.flows[0].program, "");
  EXPECT_EQ(a.pending(), 1U);
  expect_counts(a, 1, 0, 0); // deferred is no final outcome

  // The next batch does not carry it: it is asked all the same.
  now_ += std::chrono::seconds(1);
  store::Batch third;
  a.annotate(third);
  EXPECT_EQ(a.pending(), 0U);
  expect_counts(a, 2, 0, 0);
  EXPECT_EQ(a.mapper_counters().rescans, 2U);

  // Its later batches carry the program; it is not counted again.
  now_ += std::chrono::seconds(1);
  store::Batch fourth;
  fourth.flows.push_back(flow(7, 6, "127.0.0.1", 50002, "127.0.0.1", 8080));
  a.annotate(fourth);
  EXPECT_EQ(fourth.flows[0].pid, 600);
  EXPECT_EQ(fourth.flows[0].program, "python3");
  expect_counts(a, 2, 0, 0);
  EXPECT_EQ(a.mapper_counters().rescans, 2U);
}

// A flow gone before the batch that carries it is looked up: one rescan made
// after the batch was sealed answers for every new flow of the batch, so the
// second unknown flow of the same batch is final (no_socket), not deferred.
TEST_F(AnnotatorTest, OneRescanPerBatchAnswersForAllItsNewFlows) {
  ProcessAnnotator a(options());
  store::Batch first;
  first.flows.push_back(flow(0, 6, "127.0.0.1", 50000, "127.0.0.1", 8080));
  a.annotate(first);
  now_ += std::chrono::seconds(1);
  store::Batch b;
  b.flows.push_back(flow(10, 6, "127.0.0.1", 50010, "127.0.0.1", 8080));
  b.flows.push_back(flow(11, 17, "127.0.0.1", 50011, "127.0.0.1", 53));
  a.annotate(b);
  EXPECT_EQ(a.pending(), 0U);
  expect_counts(a, 1, 2, 0);
  EXPECT_EQ(a.mapper_counters().rescans, 2U);
}

// Memory is bounded: past max_remembered a forgotten flow is asked (and
// counted) again.
TEST_F(AnnotatorTest, RemembersAtMostItsBound) {
  ProcessAnnotator a(options(), 4);
  store::Batch b;
  for (std::uint64_t i = 0; i < 6; ++i) {
    b.flows.push_back(flow(100 + i, 17, "10.1.1.1", 1000, "10.2.2.2", 53));
  }
  a.annotate(b);
  expect_counts(a, 0, 0, 6);
  store::Batch again;
  again.flows.push_back(flow(100, 17, "10.1.1.1", 1000, "10.2.2.2", 53)); // forgotten
  again.flows.push_back(flow(105, 17, "10.1.1.1", 1000, "10.2.2.2", 53)); // kept
  a.annotate(again);
  expect_counts(a, 0, 0, 7);
}

} // namespace
} // namespace ta::ingest
