// process/socket_table (private to ta_process): one dump of this network
// namespace's TCP and UDP sockets, IPv4 and IPv6, from NETLINK_SOCK_DIAG or
// from the /proc/net text files. See ta/process/mapper.hpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ta/common/address.hpp"
#include "ta/common/status.hpp"
#include "ta/process/mapper.hpp"

namespace ta::process::detail {

struct SocketEntry {
  Protocol protocol = Protocol::tcp;
  IpAddress local;
  std::uint16_t local_port = 0;
  IpAddress remote;
  std::uint16_t remote_port = 0;
  std::uint64_t inode = 0; // 0: held by no file (TIME_WAIT, orphaned)
};

struct DumpStats {
  std::uint64_t malformed = 0;  // lines or messages that could not be read
  std::uint64_t over_bound = 0; // sockets left out by the bound
};

// ::ffff:a.b.c.d becomes the IPv4 address a.b.c.d; anything else unchanged.
[[nodiscard]] IpAddress unmap_v4(const IpAddress &a) noexcept;

// All four tables through NETLINK_SOCK_DIAG. Appends to `out`, at most
// `max_sockets` in all.
Status dump_netlink(std::vector<SocketEntry> &out, std::size_t max_sockets, DumpStats &stats);

// The four /proc/net files under `proc_root` ("net/tcp", ...). A missing file
// (no IPv6 in this kernel) is skipped; fails only when none can be read.
Status dump_proc_files(const std::string &proc_root, std::vector<SocketEntry> &out,
                       std::size_t max_sockets, DumpStats &stats);

// One /proc/net/{tcp,udp}[6] file's text, `v6` for the *6 ones.
void parse_proc_net(std::string_view text, Protocol protocol, bool v6,
                    std::vector<SocketEntry> &out, std::size_t max_sockets, DumpStats &stats);

// The messages of one netlink receive buffer. Returns false at NLMSG_DONE or
// NLMSG_ERROR (`error` set for the latter), true when more may follow.
bool parse_netlink_buffer(std::span<const std::byte> buffer, Protocol protocol,
                          std::vector<SocketEntry> &out, std::size_t max_sockets, DumpStats &stats,
                          int &error);

} // namespace ta::process::detail
