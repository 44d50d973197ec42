// capture/live: live capture from network interfaces through libpcap (part
// of ta_capture, the only library that links libpcap), multiplexed with
// poll(2) so one thread serves several interfaces, a wake-up fd and the
// caller's own timers (rotation, store flushes) without blocking.
//
// Contract: nothing here throws; failures are a one-line message that names
// the interface and says what to do, returned as a Status (open,
// check_filter, drop_privileges) or beside -1 (poll_once, error()).
// A LiveCapture is used by one thread, except wake(), which any thread or a
// signal handler may call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ta/capture/capture.hpp"

namespace ta::capture {

struct LiveOptions {
  // Interface names as given to libpcap; "any" captures every interface.
  std::vector<std::string> interfaces;
  // BPF filter (pcap-filter(7)) applied to every interface; empty = all.
  std::string filter;
  std::uint32_t snaplen = 262144;
  // Kernel ring size per interface in bytes. Too small and bursts show up
  // as InterfaceStats::dropped.
  std::uint32_t buffer_bytes = 4U * 1024U * 1024U;
  // false (default): libpcap uses TPACKET_V3, which packs frames tightly
  // into blocks that the kernel hands over when full or timeout_ms old, so
  // frames arrive up to timeout_ms late. true: every frame as soon as it
  // arrives, but libpcap then switches to TPACKET_V2, whose ring has one
  // fixed slot per frame sized for the largest possible frame (snaplen, or
  // the MTU when smaller): with the defaults "any" holds 8 frames and lo 64
  // (and on lo each packet fills two, libpcap drops the outgoing copy only
  // later). Measured: a burst of 500 datagrams on lo, 4 MiB, default
  // snaplen: 0 dropped with false, 936 of 1000 with true. Use true only with
  // a small snaplen or a large buffer_bytes.
  bool immediate = false;
  int timeout_ms = 100;
  // Ask for Linux cooked frames (SLL2, else SLL) so each frame carries its
  // packet type (incoming/outgoing). With false, the native link type.
  bool cooked = true;
};

struct InterfaceStats {
  std::string name;
  std::uint32_t link_type = 0;
  // Totals since open, widened to 64 bits (libpcap's counters are 32-bit and
  // wrap; call stats() at least once per 2^32 packets to keep them exact).
  // On Linux `received` counts packets that passed the filter, including
  // the ones counted in `dropped` (no room in the ring buffer).
  std::uint64_t received = 0;
  std::uint64_t dropped = 0;
  // Dropped by the interface/driver before capture; always 0 for "any".
  std::uint64_t if_dropped = 0;
  // false while the interface is administratively down (seen by
  // poll_once()); capture resumes by itself when it is up again.
  bool up = true;
};

class LiveCapture {
public:
  // Upper bound on frames taken from one interface per poll_once(), so a
  // flooded interface cannot starve the others or the caller's timers.
  static constexpr int kMaxFramesPerDispatch = 4096;

  // Opens every interface in options.interfaces (all or nothing). On failure
  // a one-line message naming the interface: invalid_argument (no or an
  // empty interface name, a bad filter), not_found (no such interface),
  // permission_denied, unavailable (interface down), unsupported (monitor
  // mode, timestamps, polling) or io_error. Non-fatal libpcap warnings are
  // kept in warnings().
  [[nodiscard]] static Result<std::unique_ptr<LiveCapture>> open(const LiveOptions &options);

  // The capture filter for a list of ports: `port P1 or port P2 ... or
  // port 53` (DNS, UDP and TCP, is always in), "" (everything) with no
  // ports. It selects no direction (no `(port P and outbound) or (port 53
  // and inbound)`): libpcap's inbound/outbound on a named Linux interface
  // drops frames of both directions, so the analyzer decides what is
  // outbound (README "Live capture, rotated files, directory ingest").
  // Duplicate ports are listed once.
  [[nodiscard]] static std::string default_filter(const std::vector<std::uint16_t> &ports);

  // Whether libpcap compiles `filter` for link type `link_type` (LINKTYPE_
  // value): ok, invalid_argument (the message quotes the filter and libpcap's
  // reason) or unsupported (a link type libpcap does not know). Lets a command
  // line be checked before any interface is opened. Note: "inbound"/"outbound"
  // compile for Ethernet only because live Linux captures implement them in the
  // kernel; libpcap refuses them on Ethernet capture *files*.
  [[nodiscard]] static Status check_filter(const std::string &filter, std::uint32_t link_type);

  ~LiveCapture();
  LiveCapture(const LiveCapture &) = delete;
  LiveCapture &operator=(const LiveCapture &) = delete;

  [[nodiscard]] std::size_t interface_count() const noexcept;
  [[nodiscard]] const std::string &interface_name(std::size_t index) const noexcept;
  // pcap LINKTYPE_* value of the frames from interface `index`: 276 (SLL2)
  // or 113 (SLL) when cooked frames were granted, else the native type
  // (1 = Ethernet). libpcap 1.10 grants cooked types only on "any"; a named
  // interface (lo, eth0) stays Ethernet, and its frames carry no direction.
  [[nodiscard]] std::uint32_t link_type(std::size_t index) const noexcept;
  [[nodiscard]] std::uint32_t snaplen() const noexcept;
  [[nodiscard]] const std::vector<std::string> &warnings() const noexcept { return warnings_; }

  // Waits up to timeout_ms (-1: no limit, 0: just look) for any interface or
  // wake(), then hands every waiting frame, at most kMaxFramesPerDispatch
  // per interface, to on_frame. Frame::data is valid only during the call.
  // Returns the number of frames handed over (0 on timeout, on wake() and
  // when a signal interrupted the wait), or -1 with error() set when an
  // interface failed or disappeared, or on_frame threw. An interface that
  // is removed while down is only noticed by a later poll_once(): poll with
  // a finite timeout.
  int poll_once(int timeout_ms,
                const std::function<void(std::size_t iface_index, const Frame &)> &on_frame);

  // Makes the current or the next poll_once() return promptly. Safe from a
  // signal handler and from any thread (one write(2) to an eventfd; errno is
  // preserved). Wake-ups are not lost and do not accumulate: several wake()
  // calls before a poll_once() end one wait.
  void wake() const noexcept;

  // Counters per interface, in the order of options.interfaces. An
  // interface whose counters cannot be read keeps its last values.
  [[nodiscard]] std::vector<InterfaceStats> stats();

  [[nodiscard]] const std::string &error() const noexcept { return error_; }

private:
  LiveCapture() = default;
  bool check_interface(std::size_t index);
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::vector<std::string> warnings_;
  std::string error_;
};

// Switches the process to `user` (its uid, gid and supplementary groups)
// once the captures are open: their sockets stay usable, no new one can be
// opened. Run as root it verifies that root cannot be regained. Run without
// root (file capabilities, e.g. setcap) it can only stay the same user: it
// then clears every capability instead. Not ok, with a one-line message, when
// the user is unknown (not_found; invalid_argument for an empty name or root)
// or the switch did not fully happen (permission_denied, failed): the caller
// should exit, it may still be privileged.
[[nodiscard]] Status drop_privileges(const std::string &user);

} // namespace ta::capture
