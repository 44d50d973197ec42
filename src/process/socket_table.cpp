// process/socket_table: see socket_table.hpp.
#include "socket_table.hpp"

#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "ta/common/byte_cursor.hpp"

namespace ta::process::detail {

namespace {

// Netlink headers and inet_diag_msg's non-port fields are in host order.
bool read_host_u32(ByteCursor &c, std::uint32_t &out) {
  Bytes b;
  if (!c.take(4, b)) {
    return false;
  }
  std::memcpy(&out, b.data(), 4);
  return true;
}

bool read_host_u16(ByteCursor &c, std::uint16_t &out) {
  Bytes b;
  if (!c.take(2, b)) {
    return false;
  }
  std::memcpy(&out, b.data(), 2);
  return true;
}

void add(std::vector<SocketEntry> &out, SocketEntry e, std::size_t max_sockets, DumpStats &stats) {
  if (out.size() >= max_sockets) {
    ++stats.over_bound;
    return;
  }
  e.local = unmap_v4(e.local);
  e.remote = unmap_v4(e.remote);
  out.push_back(e);
}

// inet_diag_msg (linux/inet_diag.h): family u8, state u8, timer u8,
// retrans u8; id { sport be16, dport be16, src[16], dst[16], if u32,
// cookie[2] u32 }; expires, rqueue, wqueue, uid, inode (u32 each).
bool parse_diag_msg(ByteCursor c, Protocol protocol, SocketEntry &e) {
  std::uint8_t family = 0;
  Bytes src;
  Bytes dst;
  std::uint32_t inode = 0;
  if (!c.read_u8(family) || !c.skip(3) || !c.read_u16(e.local_port) || !c.read_u16(e.remote_port) ||
      !c.take(16, src) || !c.take(16, dst) || !c.skip(12) || !c.skip(16) ||
      !read_host_u32(c, inode)) {
    return false;
  }
  if (family == AF_INET) {
    e.local = IpAddress::v4(src.data());
    e.remote = IpAddress::v4(dst.data());
  } else if (family == AF_INET6) {
    e.local = IpAddress::v6(src.data());
    e.remote = IpAddress::v6(dst.data());
  } else {
    return false;
  }
  e.protocol = protocol;
  e.inode = inode;
  return true;
}

Status dump_one(int fd, std::uint8_t family, Protocol protocol, std::uint32_t seq,
                std::vector<SocketEntry> &out, std::size_t max_sockets, DumpStats &stats) {
  struct Request {
    nlmsghdr header;
    inet_diag_req_v2 body;
  };
  Request req{};
  req.header.nlmsg_len = sizeof(req);
  req.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  req.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.header.nlmsg_seq = seq;
  req.body.sdiag_family = family;
  req.body.sdiag_protocol = protocol == Protocol::tcp ? IPPROTO_TCP : IPPROTO_UDP;
  req.body.idiag_states = ~0U; // every state: UDP sockets are "established" or "close"
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): the sockets API
  if (::sendto(fd, &req, sizeof(req), 0, reinterpret_cast<const sockaddr *>(&kernel),
               sizeof(kernel)) < 0) {
    return Status::io_error(std::string("sock_diag request: ") + std::strerror(errno));
  }
  std::array<std::byte, 32768> buffer{};
  for (;;) {
    const ssize_t n = ::recv(fd, buffer.data(), buffer.size(), 0);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return Status::io_error(std::string("sock_diag reply: ") + std::strerror(errno));
    }
    if (n == 0) {
      return Status::io_error("sock_diag reply: socket closed");
    }
    int error = 0;
    const bool more = parse_netlink_buffer(std::span(buffer.data(), static_cast<std::size_t>(n)),
                                           protocol, out, max_sockets, stats, error);
    if (error != 0) {
      return Status::io_error(std::string("sock_diag: ") + std::strerror(error));
    }
    if (!more) {
      return {};
    }
  }
}

bool parse_hex(std::string_view s, std::uint32_t &out) {
  if (s.empty() || s.size() > 8) {
    return false;
  }
  std::uint32_t v = 0;
  for (const char c : s) {
    std::uint32_t d = 0;
    if (c >= '0' && c <= '9') {
      d = static_cast<std::uint32_t>(c - '0');
    } else if (c >= 'A' && c <= 'F') {
      d = static_cast<std::uint32_t>(c - 'A' + 10);
    } else if (c >= 'a' && c <= 'f') {
      d = static_cast<std::uint32_t>(c - 'a' + 10);
    } else {
      return false;
    }
    v = (v << 4U) | d;
  }
  out = v;
  return true;
}

// "0100007F:1F90" (IPv4) or 32 hex digits ":" port (IPv6). The kernel prints
// each 32-bit word of the address as a native-endian integer (%08X), so the
// word's bytes in memory are the address bytes; the port is a plain number.
bool parse_endpoint(std::string_view s, bool v6, IpAddress &addr, std::uint16_t &port) {
  const std::size_t colon = s.find(':');
  const std::size_t hex_len = v6 ? 32 : 8;
  if (colon != hex_len || s.size() - colon - 1 != 4) {
    return false;
  }
  std::array<std::byte, 16> bytes{};
  for (std::size_t w = 0; w < hex_len / 8; ++w) {
    std::uint32_t word = 0;
    if (!parse_hex(s.substr(w * 8, 8), word)) {
      return false;
    }
    std::memcpy(bytes.data() + w * 4, &word, 4);
  }
  std::uint32_t p = 0;
  if (!parse_hex(s.substr(colon + 1), p)) {
    return false;
  }
  addr = v6 ? IpAddress::v6(bytes.data()) : IpAddress::v4(bytes.data());
  port = static_cast<std::uint16_t>(p);
  return true;
}

bool parse_decimal(std::string_view s, std::uint64_t &out) {
  if (s.empty() || s.size() > 19) {
    return false;
  }
  std::uint64_t v = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') {
      return false;
    }
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  out = v;
  return true;
}

} // namespace

IpAddress unmap_v4(const IpAddress &a) noexcept {
  static constexpr std::array<std::uint8_t, 12> prefix{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (a.family != 6 || std::memcmp(a.bytes.data(), prefix.data(), prefix.size()) != 0) {
    return a;
  }
  IpAddress v4;
  v4.family = 4;
  std::memcpy(v4.bytes.data(), a.bytes.data() + 12, 4);
  return v4;
}

bool parse_netlink_buffer(std::span<const std::byte> buffer, Protocol protocol,
                          std::vector<SocketEntry> &out, std::size_t max_sockets, DumpStats &stats,
                          int &error) {
  ByteCursor c(buffer);
  while (c.remaining() >= sizeof(nlmsghdr)) {
    const std::size_t start = c.offset();
    std::uint32_t len = 0;
    std::uint16_t type = 0;
    if (!read_host_u32(c, len) || !read_host_u16(c, type) || !c.skip(10) ||
        len < sizeof(nlmsghdr)) {
      ++stats.malformed;
      return false; // a damaged buffer: end this dump rather than guess
    }
    Bytes body;
    if (!c.take(len - sizeof(nlmsghdr), body)) {
      ++stats.malformed;
      return false;
    }
    if (type == NLMSG_DONE) {
      return false;
    }
    if (type == NLMSG_ERROR) {
      ByteCursor e(body);
      std::uint32_t code = 0;
      // nlmsgerr.error: a negative errno. Anything else (0, positive, or
      // out of errno's range, INT_MIN included) is a malformed reply.
      const std::int64_t negated =
          read_host_u32(e, code) ? -static_cast<std::int64_t>(static_cast<std::int32_t>(code)) : 0;
      error = negated > 0 && negated <= 4095 ? static_cast<int>(negated) : EPROTO;
      return false;
    }
    if (type == SOCK_DIAG_BY_FAMILY) {
      SocketEntry entry;
      if (parse_diag_msg(ByteCursor(body), protocol, entry)) {
        add(out, entry, max_sockets, stats);
      } else {
        ++stats.malformed;
      }
    }
    // Messages are padded to 4 bytes (NLMSG_ALIGN).
    const std::size_t aligned = (len + 3U) & ~std::size_t{3};
    if (!c.seek(std::min(start + aligned, c.size()))) {
      return false;
    }
  }
  return true;
}

Status dump_netlink(std::vector<SocketEntry> &out, std::size_t max_sockets, DumpStats &stats) {
  const int fd = ::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) {
    return Status::unavailable(std::string("sock_diag socket: ") + std::strerror(errno));
  }
  // A dump is answered at once; the timeout only guards against a kernel that
  // never answers.
  timeval timeout{};
  timeout.tv_sec = 1;
  (void)::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  Status status;
  std::uint32_t seq = 1;
  for (const std::uint8_t family : {std::uint8_t{AF_INET}, std::uint8_t{AF_INET6}}) {
    for (const Protocol p : {Protocol::tcp, Protocol::udp}) {
      status = dump_one(fd, family, p, seq++, out, max_sockets, stats);
      if (!status.ok()) {
        break;
      }
    }
    if (!status.ok()) {
      break;
    }
  }
  ::close(fd);
  return status;
}

void parse_proc_net(std::string_view text, Protocol protocol, bool v6,
                    std::vector<SocketEntry> &out, std::size_t max_sockets, DumpStats &stats) {
  bool header = true;
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (header) { // "  sl  local_address rem_address   st ..."
      header = false;
      continue;
    }
    // Fields: sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
    std::array<std::string_view, 10> f{};
    std::size_t n = 0;
    while (n < f.size()) {
      const std::size_t b = line.find_first_not_of(" \t");
      if (b == std::string_view::npos) {
        break;
      }
      line.remove_prefix(b);
      const std::size_t e = line.find_first_of(" \t");
      f[n++] = line.substr(0, e);
      line = e == std::string_view::npos ? std::string_view() : line.substr(e);
    }
    if (n == 0) {
      continue; // a blank line
    }
    SocketEntry e;
    e.protocol = protocol;
    if (n < f.size() || !parse_endpoint(f[1], v6, e.local, e.local_port) ||
        !parse_endpoint(f[2], v6, e.remote, e.remote_port) || !parse_decimal(f[9], e.inode)) {
      ++stats.malformed;
      continue;
    }
    add(out, e, max_sockets, stats);
  }
}

Status dump_proc_files(const std::string &proc_root, std::vector<SocketEntry> &out,
                       std::size_t max_sockets, DumpStats &stats) {
  struct File {
    const char *name;
    Protocol protocol;
    bool v6;
  };
  static constexpr std::array<File, 4> files{{{"net/tcp", Protocol::tcp, false},
                                              {"net/tcp6", Protocol::tcp, true},
                                              {"net/udp", Protocol::udp, false},
                                              {"net/udp6", Protocol::udp, true}}};
  std::size_t read = 0;
  for (const File &file : files) {
    std::ifstream in(proc_root + "/" + file.name, std::ios::binary);
    if (!in) {
      continue;
    }
    std::ostringstream text;
    text << in.rdbuf();
    ++read;
    parse_proc_net(text.view(), file.protocol, file.v6, out, max_sockets, stats);
  }
  if (read == 0) {
    return Status::not_found("no socket table under " + proc_root + "/net");
  }
  return {};
}

} // namespace ta::process::detail
