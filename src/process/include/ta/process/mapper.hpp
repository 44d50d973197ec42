// process/mapper: which program owns the socket of a flow of this machine, as
// `ss -p` says it: the socket table of this network namespace (inode per
// protocol, local and remote address and port) joined to the sockets each
// process holds (/proc/PID/fd/N -> "socket:[INODE]"), and /proc/PID/comm.
//
// Socket table: NETLINK_SOCK_DIAG (one inet_diag_req_v2 dump per TCP/UDP and
// IPv4/IPv6), or /proc/net/{tcp,tcp6,udp,udp6} when netlink is refused or
// SocketSource::proc_files is asked for (always with a root other than /proc,
// for fake trees in tests). IPv4-mapped IPv6 sockets count as IPv4 ones.
//
// A flow is matched most specific first: the exact 4-tuple (a connected
// socket), then a socket bound to the local address and port with no peer
// (listener, unconnected UDP), then one bound to the wildcard address (0.0.0.0
// or ::, which also takes IPv4) on that port. Sockets with inode 0 (TIME_WAIT,
// orphans after close) belong to no process and are not matched.
//
// Outcomes (closed enum, stable snake_case names, each counted):
//   mapped           the owning process: pid and comm.
//   no_socket        no socket of this namespace has the flow: it was
//                    short-lived and is gone, or it never was this machine's.
//   other_namespace  the flow's local address is not an address of this
//                    network namespace (a container's traffic seen on a
//                    bridge), or the socket exists here but no process visible
//                    in this /proc holds it (another PID namespace holds it).
//   no_permission    the socket exists but some processes' fd tables could not
//                    be read (another user's /proc/PID/fd needs
//                    CAP_SYS_PTRACE or CAP_DAC_READ_SEARCH), so its owner may
//                    be one of them. take_permission_warning() says so once.
//   deferred         not looked up now: the rescan budget is spent (below).
//
// Cache and cost: lookups are answered from the last snapshot (socket table +
// inode -> pid for the sockets in it), and from a memory of flows already
// mapped (so a flow whose process exited keeps its program). A flow the
// snapshot cannot map triggers a full rescan (one dump, one walk of every
// /proc/PID/fd), at most once per `min_rescan_interval` (100 ms): unknown
// flows in between get `deferred` and should be asked again. So the rescan
// cost is bounded to 10 per second whatever the traffic. A flow remembered as
// mapped keeps its program until dropped from memory, even if its 4-tuple is
// later reused by another process (rare: ports cycle slowly). The snapshot holds at
// most `max_sockets` sockets; remembered flows at most `max_remembered`, in two
// generations (the older half dropped when the newer fills). Not thread-safe.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ta/common/address.hpp"
#include "ta/common/status.hpp"

namespace ta::process {

enum class Protocol : std::uint8_t { tcp, udp };

// A flow seen from this machine: `local` is the address of this machine.
struct FlowKey {
  Protocol protocol = Protocol::tcp;
  IpAddress local;
  std::uint16_t local_port = 0;
  IpAddress remote;
  std::uint16_t remote_port = 0;
  friend bool operator==(const FlowKey &, const FlowKey &) = default;
};

enum class Outcome : std::uint8_t { mapped, no_socket, other_namespace, no_permission, deferred };
inline constexpr std::size_t outcome_count = 5;
[[nodiscard]] std::string_view outcome_name(Outcome outcome) noexcept;

struct ProcessInfo {
  int pid = 0;
  std::string comm; // /proc/PID/comm without its newline: any bytes, 15 at most
};

struct Lookup {
  Outcome outcome = Outcome::no_socket;
  ProcessInfo process; // set when mapped
};

enum class SocketSource : std::uint8_t { netlink_then_proc_files, proc_files };

struct Options {
  std::string proc_root = "/proc";
  SocketSource source = SocketSource::netlink_then_proc_files;
  std::chrono::milliseconds min_rescan_interval{100};
  std::size_t max_sockets = 1U << 20U;
  std::size_t max_remembered = 65536;
  // The addresses of this network namespace; read with getifaddrs() at each
  // rescan when unset (tests of fake trees set them).
  std::optional<std::vector<IpAddress>> local_addresses;
  // Monotonic clock; steady_clock when unset (tests inject one).
  std::function<std::chrono::steady_clock::time_point()> clock;
};

struct Counters {
  std::array<std::uint64_t, outcome_count> outcomes{}; // indexed by Outcome
  std::uint64_t rescans = 0;
  std::uint64_t netlink_failures = 0;   // dumps that fell back to /proc/net files
  std::uint64_t unreadable_pids = 0;    // in the last rescan
  std::uint64_t sockets = 0;            // in the last snapshot
  std::uint64_t sockets_over_bound = 0; // sockets left out by max_sockets, last rescan
  [[nodiscard]] std::uint64_t of(Outcome o) const noexcept {
    return outcomes[static_cast<std::size_t>(o)];
  }
};

class Mapper {
public:
  explicit Mapper(Options options = {});
  Mapper(Mapper &&) noexcept;
  Mapper &operator=(Mapper &&) noexcept;
  Mapper(const Mapper &) = delete;
  Mapper &operator=(const Mapper &) = delete;
  ~Mapper();

  // The owner of `flow`, rescanning when the snapshot cannot map it and the
  // budget allows. Every call counts one outcome.
  // `settled_by`: every packet of the flow was seen before this time, so a
  // snapshot taken at or after it is the truth for the flow: when that
  // snapshot cannot map it, the answer is final (no_socket, ...) and no
  // rescan is made or deferred. Unset: the budget decides alone.
  [[nodiscard]] Lookup lookup(const FlowKey &flow,
                              std::chrono::steady_clock::time_point settled_by = {});

  // A full rescan now, whatever the budget. Fails only when neither netlink
  // nor the /proc/net files give a socket table.
  Status refresh();

  // Once per Mapper: a permission_denied Status naming how many processes'
  // fd tables were unreadable and the capabilities that would allow it;
  // nullopt before that happens, and after it was taken once.
  [[nodiscard]] std::optional<Status> take_permission_warning();

  [[nodiscard]] const Counters &counters() const noexcept;

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace ta::process
