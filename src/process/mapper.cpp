// process/mapper: see ta/process/mapper.hpp for the contract.
#include "ta/process/mapper.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <unordered_map>
#include <utility>

#include <netinet/in.h>
#include <sys/socket.h>

#include "socket_table.hpp"

namespace ta::process {

namespace {

struct FlowKeyHash {
  std::size_t operator()(const FlowKey &k) const noexcept {
    const IpAddressHash h;
    std::size_t v = h(k.local) * 31U + h(k.remote);
    v ^= (std::size_t{k.local_port} << 16U) | k.remote_port;
    v ^= static_cast<std::size_t>(k.protocol) << 40U;
    return v;
  }
};

IpAddress any_of(std::uint8_t family) {
  IpAddress a;
  a.family = family;
  return a;
}

// "socket:[12345]" -> 12345; 0 for anything else.
std::uint64_t socket_inode(std::string_view link) {
  constexpr std::string_view prefix = "socket:[";
  if (link.size() < prefix.size() + 2 || link.substr(0, prefix.size()) != prefix ||
      link.back() != ']') {
    return 0;
  }
  std::uint64_t v = 0;
  for (const char c : link.substr(prefix.size(), link.size() - prefix.size() - 1)) {
    if (c < '0' || c > '9' || v > (UINT64_MAX - 9) / 10) {
      return 0;
    }
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v;
}

bool parse_pid(const char *name, int &pid) {
  long v = 0;
  if (*name == '\0') {
    return false;
  }
  for (const char *p = name; *p != '\0'; ++p) {
    if (*p < '0' || *p > '9' || v > 4194304) { // PID_MAX_LIMIT
      return false;
    }
    v = v * 10 + (*p - '0');
  }
  pid = static_cast<int>(v);
  return pid > 0;
}

std::vector<IpAddress> interface_addresses() {
  std::vector<IpAddress> out;
  ifaddrs *list = nullptr;
  if (::getifaddrs(&list) != 0) {
    return out;
  }
  for (const ifaddrs *i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr) {
      continue;
    }
    // NOLINTBEGIN(cppcoreguidelines-pro-type-reinterpret-cast): the sockets API
    if (i->ifa_addr->sa_family == AF_INET) {
      const auto *sin = reinterpret_cast<const sockaddr_in *>(i->ifa_addr);
      out.push_back(IpAddress::v4(reinterpret_cast<const std::byte *>(&sin->sin_addr)));
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      const auto *sin6 = reinterpret_cast<const sockaddr_in6 *>(i->ifa_addr);
      out.push_back(IpAddress::v6(reinterpret_cast<const std::byte *>(&sin6->sin6_addr)));
    }
    // NOLINTEND(cppcoreguidelines-pro-type-reinterpret-cast)
  }
  ::freeifaddrs(list);
  return out;
}

IpAddress loopback6() {
  IpAddress a;
  a.family = 6;
  a.bytes[15] = 1;
  return a;
}

enum class Resolved : std::uint8_t { mapped, no_socket, unheld };

} // namespace

std::string_view outcome_name(Outcome outcome) noexcept {
  switch (outcome) {
  case Outcome::mapped:
    return "mapped";
  case Outcome::no_socket:
    return "no_socket";
  case Outcome::other_namespace:
    return "other_namespace";
  case Outcome::no_permission:
    return "no_permission";
  case Outcome::deferred:
    return "deferred";
  }
  return "unknown";
}

struct Mapper::Impl {
  Options options;
  Counters counters;
  bool scanned = false;
  std::chrono::steady_clock::time_point last_scan{};
  // The snapshot: socket key -> inode; inode -> owner.
  std::unordered_map<FlowKey, std::uint64_t, FlowKeyHash> sockets;
  std::unordered_map<std::uint64_t, ProcessInfo> owners;
  std::vector<IpAddress> local_addresses; // sorted
  std::uint64_t unreadable_pids = 0;
  // Flows mapped before, in two generations (see the header).
  std::unordered_map<FlowKey, ProcessInfo, FlowKeyHash> remembered_new;
  std::unordered_map<FlowKey, ProcessInfo, FlowKeyHash> remembered_old;
  bool permission_pending = false;
  bool permission_reported = false;

  std::chrono::steady_clock::time_point now() const {
    return options.clock ? options.clock() : std::chrono::steady_clock::now();
  }

  void remember(const FlowKey &flow, const ProcessInfo &p) {
    const std::size_t cap = std::max<std::size_t>(options.max_remembered / 2, 1);
    if (remembered_new.size() >= cap) {
      remembered_old = std::move(remembered_new);
      remembered_new = {};
    }
    remembered_new.insert_or_assign(flow, p);
  }

  const ProcessInfo *recall(const FlowKey &flow) {
    if (auto it = remembered_new.find(flow); it != remembered_new.end()) {
      return &it->second;
    }
    if (auto it = remembered_old.find(flow); it != remembered_old.end()) {
      const ProcessInfo p = it->second;
      remembered_old.erase(it);
      remember(flow, p);
      return &remembered_new.find(flow)->second;
    }
    return nullptr;
  }

  // Loopback is always this namespace's; no address list (getifaddrs
  // failed) means every address may be.
  bool is_local(const IpAddress &a) const {
    if ((a.family == 4 && a.bytes[0] == 127) || a == loopback6() || local_addresses.empty()) {
      return true;
    }
    return std::binary_search(local_addresses.begin(), local_addresses.end(), a);
  }

  // The socket of `flow` in the snapshot, most specific first (see header).
  std::uint64_t find_inode(const FlowKey &flow) const {
    FlowKey k = flow;
    if (auto it = sockets.find(k); it != sockets.end()) {
      return it->second;
    }
    k.remote = any_of(flow.local.family);
    k.remote_port = 0;
    if (auto it = sockets.find(k); it != sockets.end()) {
      return it->second;
    }
    k.local = any_of(flow.local.family);
    if (auto it = sockets.find(k); it != sockets.end()) {
      return it->second;
    }
    if (flow.local.family == 4) { // a dual-stack socket bound to ::
      k.local = any_of(6);
      k.remote = any_of(6);
      if (auto it = sockets.find(k); it != sockets.end()) {
        return it->second;
      }
    }
    return 0;
  }

  Resolved resolve(const FlowKey &flow, ProcessInfo &out) const {
    const std::uint64_t inode = find_inode(flow);
    if (inode == 0) {
      return Resolved::no_socket;
    }
    const auto it = owners.find(inode);
    if (it == owners.end()) {
      return Resolved::unheld;
    }
    out = it->second;
    return Resolved::mapped;
  }

  // Walks PROC/PID/fd/* for the inodes of the snapshot.
  void scan_fds() {
    owners.clear();
    unreadable_pids = 0;
    std::unordered_map<std::uint64_t, int> wanted; // inode -> lowest pid holding it
    for (const auto &[key, inode] : sockets) {
      if (inode != 0) {
        wanted.emplace(inode, 0);
      }
    }
    DIR *root = ::opendir(options.proc_root.c_str());
    if (root == nullptr) {
      return;
    }
    std::unordered_map<int, std::string> comms;
    std::string path;
    std::array<char, 64> link{};
    while (const dirent *d = ::readdir(root)) {
      int pid = 0;
      if (!parse_pid(d->d_name, pid)) {
        continue;
      }
      path = options.proc_root + "/" + d->d_name + "/fd";
      DIR *fds = ::opendir(path.c_str());
      if (fds == nullptr) {
        if (errno == EACCES || errno == EPERM) {
          ++unreadable_pids;
        }
        continue; // ENOENT: the process exited meanwhile
      }
      bool holds = false;
      while (const dirent *f = ::readdir(fds)) {
        if (f->d_name[0] == '.') {
          continue;
        }
        const ssize_t n = ::readlinkat(::dirfd(fds), f->d_name, link.data(), link.size());
        if (n <= 0 || static_cast<std::size_t>(n) >= link.size()) {
          continue;
        }
        const std::uint64_t inode = socket_inode(std::string_view(link.data(), n));
        const auto it = inode == 0 ? wanted.end() : wanted.find(inode);
        if (it != wanted.end() && (it->second == 0 || pid < it->second)) {
          it->second = pid;
          holds = true;
        }
      }
      ::closedir(fds);
      if (holds) {
        std::ifstream in(options.proc_root + "/" + d->d_name + "/comm", std::ios::binary);
        std::string comm;
        std::getline(in, comm);
        comms.emplace(pid, std::move(comm));
      }
    }
    ::closedir(root);
    for (const auto &[inode, pid] : wanted) {
      if (pid != 0) {
        owners.emplace(inode, ProcessInfo{pid, comms[pid]});
      }
    }
  }

  Status rescan() {
    ++counters.rescans;
    last_scan = now();
    scanned = true;
    std::vector<detail::SocketEntry> entries;
    detail::DumpStats stats;
    Status st = Status::unavailable("no socket source");
    if (options.source == SocketSource::netlink_then_proc_files) {
      st = detail::dump_netlink(entries, options.max_sockets, stats);
      if (!st.ok()) {
        ++counters.netlink_failures;
        entries.clear();
        stats = {};
      }
    }
    if (!st.ok()) {
      st = detail::dump_proc_files(options.proc_root, entries, options.max_sockets, stats);
    }
    sockets.clear();
    for (const auto &e : entries) {
      if (e.inode == 0) {
        continue; // TIME_WAIT and orphans: no process holds them
      }
      sockets.emplace(FlowKey{e.protocol, e.local, e.local_port, e.remote, e.remote_port}, e.inode);
    }
    counters.sockets = sockets.size();
    counters.sockets_over_bound = stats.over_bound;
    local_addresses = options.local_addresses ? *options.local_addresses : interface_addresses();
    std::sort(local_addresses.begin(), local_addresses.end());
    scan_fds();
    counters.unreadable_pids = unreadable_pids;
    if (unreadable_pids > 0 && !permission_reported) {
      permission_pending = true;
    }
    return st;
  }

  Lookup finish(Outcome o, ProcessInfo p = {}) {
    ++counters.outcomes[static_cast<std::size_t>(o)];
    return Lookup{o, std::move(p)};
  }
};

Mapper::Mapper(Options options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  if (impl_->options.proc_root != "/proc") {
    impl_->options.source = SocketSource::proc_files; // netlink knows nothing of a fake tree
  }
}
Mapper::Mapper(Mapper &&) noexcept = default;
Mapper &Mapper::operator=(Mapper &&) noexcept = default;
Mapper::~Mapper() = default;

Lookup Mapper::lookup(const FlowKey &flow, std::chrono::steady_clock::time_point settled_by) {
  Impl &m = *impl_;
  if (const ProcessInfo *p = m.recall(flow)) {
    return m.finish(Outcome::mapped, *p);
  }
  const bool fresh = !m.scanned;
  if (fresh) {
    (void)m.rescan();
  }
  ProcessInfo p;
  Resolved r = m.resolve(flow, p);
  if (r == Resolved::no_socket && !m.is_local(flow.local)) {
    return m.finish(Outcome::other_namespace); // a rescan would not change it
  }
  const bool settled =
      settled_by != std::chrono::steady_clock::time_point{} && m.last_scan >= settled_by;
  if (r != Resolved::mapped && !fresh && !settled) {
    if (m.now() - m.last_scan < m.options.min_rescan_interval) {
      return m.finish(Outcome::deferred);
    }
    (void)m.rescan();
    r = m.resolve(flow, p);
  }
  switch (r) {
  case Resolved::mapped:
    m.remember(flow, p);
    return m.finish(Outcome::mapped, std::move(p));
  case Resolved::no_socket:
    return m.finish(Outcome::no_socket);
  case Resolved::unheld:
    return m.finish(m.unreadable_pids > 0 ? Outcome::no_permission : Outcome::other_namespace);
  }
  return m.finish(Outcome::no_socket);
}

Status Mapper::refresh() {
  return impl_->rescan();
}

std::optional<Status> Mapper::take_permission_warning() {
  Impl &m = *impl_;
  if (!m.permission_pending) {
    return std::nullopt;
  }
  m.permission_pending = false;
  m.permission_reported = true;
  return Status::permission_denied(
      "the open files of " + std::to_string(m.unreadable_pids) +
      " processes cannot be read, so their flows are not mapped to a program: reading another "
      "user's /proc/PID/fd needs CAP_SYS_PTRACE or CAP_DAC_READ_SEARCH");
}

const Counters &Mapper::counters() const noexcept {
  return impl_->counters;
}

} // namespace ta::process
