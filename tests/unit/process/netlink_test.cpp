// The sock_diag reply parser on hand-built buffers: the layouts of
// struct nlmsghdr and struct inet_diag_msg written field by field (netlink
// fields in host order, ports and addresses in network order), including
// truncated and damaged messages.
#include <cstring>
#include <vector>

#include <gtest/gtest.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <sys/socket.h>

#include "socket_table.hpp"

namespace {

using ta::IpAddress;
using ta::process::Protocol;
using ta::process::detail::DumpStats;
using ta::process::detail::parse_netlink_buffer;
using ta::process::detail::SocketEntry;

void put_host32(std::vector<std::byte> &b, std::uint32_t v) {
  const auto at = b.size();
  b.resize(at + 4);
  std::memcpy(b.data() + at, &v, 4);
}
void put_host16(std::vector<std::byte> &b, std::uint16_t v) {
  const auto at = b.size();
  b.resize(at + 2);
  std::memcpy(b.data() + at, &v, 2);
}
void put_bytes(std::vector<std::byte> &b, std::initializer_list<int> bytes, std::size_t pad_to) {
  const auto at = b.size();
  for (const int x : bytes) {
    b.push_back(static_cast<std::byte>(x));
  }
  b.resize(at + pad_to);
}

// One netlink message of `type` with `body`, padded to 4 bytes.
void message(std::vector<std::byte> &b, std::uint16_t type, const std::vector<std::byte> &body) {
  put_host32(b, static_cast<std::uint32_t>(16 + body.size()));
  put_host16(b, type);
  put_host16(b, NLM_F_MULTI);
  put_host32(b, 1); // seq
  put_host32(b, 0); // port id
  b.insert(b.end(), body.begin(), body.end());
  b.resize((b.size() + 3) & ~std::size_t{3});
}

// inet_diag_msg: 192.168.1.20:443 <-> 10.0.0.2:54321, inode `inode`.
std::vector<std::byte> diag_v4(std::uint32_t inode) {
  std::vector<std::byte> m;
  put_bytes(m, {AF_INET, 1 /* ESTABLISHED */, 0, 0}, 4);
  put_bytes(m, {0x01, 0xbb, 0xd4, 0x31}, 4); // sport 443, dport 54321 (network order)
  put_bytes(m, {192, 168, 1, 20}, 16);       // src
  put_bytes(m, {10, 0, 0, 2}, 16);           // dst
  put_bytes(m, {}, 12);                      // if, cookie
  put_bytes(m, {}, 16);                      // expires, rqueue, wqueue, uid
  put_host32(m, inode);
  EXPECT_EQ(m.size(), sizeof(inet_diag_msg));
  return m;
}

std::vector<std::byte> diag_v6_mapped(std::uint32_t inode) {
  std::vector<std::byte> m;
  put_bytes(m, {AF_INET6, 10 /* LISTEN */, 0, 0}, 4);
  put_bytes(m, {0x1f, 0x90, 0, 0}, 4); // sport 8080
  put_bytes(m, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1}, 16);
  put_bytes(m, {}, 16);
  put_bytes(m, {}, 28);
  put_host32(m, inode);
  return m;
}

TEST(Netlink, ParsesMessagesUntilDone) {
  std::vector<std::byte> b;
  message(b, SOCK_DIAG_BY_FAMILY, diag_v4(4242));
  message(b, SOCK_DIAG_BY_FAMILY, diag_v6_mapped(77));
  std::vector<SocketEntry> out;
  DumpStats stats;
  int error = 0;
  EXPECT_TRUE(parse_netlink_buffer(b, Protocol::tcp, out, 100, stats, error)); // no DONE yet
  message(b, NLMSG_DONE, std::vector<std::byte>(4));
  out.clear();
  EXPECT_FALSE(parse_netlink_buffer(b, Protocol::tcp, out, 100, stats, error));
  EXPECT_EQ(error, 0);
  ASSERT_EQ(out.size(), 2U);
  EXPECT_EQ(out[0].local, *IpAddress::parse("192.168.1.20"));
  EXPECT_EQ(out[0].local_port, 443);
  EXPECT_EQ(out[0].remote, *IpAddress::parse("10.0.0.2"));
  EXPECT_EQ(out[0].remote_port, 54321);
  EXPECT_EQ(out[0].inode, 4242U);
  EXPECT_EQ(out[1].local, *IpAddress::parse("127.0.0.1")); // ::ffff:127.0.0.1 unmapped
  EXPECT_EQ(out[1].local_port, 8080);
  EXPECT_EQ(out[1].inode, 77U);
  EXPECT_EQ(stats.malformed, 0U);
}

TEST(Netlink, ErrorReplyCarriesTheErrno) {
  std::vector<std::byte> body;
  put_host32(body, static_cast<std::uint32_t>(-EPERM));
  body.resize(20);
  std::vector<std::byte> b;
  message(b, NLMSG_ERROR, body);
  std::vector<SocketEntry> out;
  DumpStats stats;
  int error = 0;
  EXPECT_FALSE(parse_netlink_buffer(b, Protocol::udp, out, 100, stats, error));
  EXPECT_EQ(error, EPERM);
}

TEST(Netlink, DamagedMessagesAreCountedNeverOverread) {
  std::vector<std::byte> good;
  message(good, SOCK_DIAG_BY_FAMILY, diag_v4(1));
  // A diag message cut short (its length says so): malformed, skipped.
  std::vector<std::byte> b;
  auto shortened = diag_v4(2);
  shortened.resize(40);
  message(b, SOCK_DIAG_BY_FAMILY, shortened);
  b.insert(b.end(), good.begin(), good.end());
  std::vector<SocketEntry> out;
  DumpStats stats;
  int error = 0;
  EXPECT_TRUE(parse_netlink_buffer(b, Protocol::tcp, out, 100, stats, error));
  EXPECT_EQ(out.size(), 1U);
  EXPECT_EQ(stats.malformed, 1U);
  // A length past the buffer, and one below the header: the rest is dropped.
  for (const std::uint32_t bad : {std::uint32_t{4096}, std::uint32_t{8}}) {
    std::vector<std::byte> c = good;
    std::memcpy(c.data(), &bad, 4);
    out.clear();
    stats = {};
    EXPECT_FALSE(parse_netlink_buffer(c, Protocol::tcp, out, 100, stats, error));
    EXPECT_TRUE(out.empty());
    EXPECT_EQ(stats.malformed, 1U);
  }
  // Every truncation of a good buffer: no crash, never more than one entry.
  for (std::size_t n = 0; n <= good.size(); ++n) {
    out.clear();
    stats = {};
    (void)parse_netlink_buffer(std::span(good.data(), n), Protocol::tcp, out, 100, stats, error);
    EXPECT_LE(out.size(), 1U);
  }
  // An unknown address family: malformed.
  auto odd = diag_v4(3);
  odd[0] = std::byte{99};
  std::vector<std::byte> d;
  message(d, SOCK_DIAG_BY_FAMILY, odd);
  out.clear();
  stats = {};
  EXPECT_TRUE(parse_netlink_buffer(d, Protocol::tcp, out, 100, stats, error));
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(stats.malformed, 1U);
}

} // namespace
