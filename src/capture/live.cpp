#include "ta/capture/live.hpp"

#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <exception>
#include <utility>
#include <vector>

#include <linux/capability.h>
#include <net/if.h>
#include <pcap/pcap.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

namespace ta::capture {
namespace {

constexpr std::uint32_t kLinktypeRaw = 101;

// libpcap messages occasionally end in a newline or quote a multi-line
// system message; every error of ours is one line.
std::string one_line(const char *text) {
  std::string s = text != nullptr ? text : "";
  std::replace(s.begin(), s.end(), '\n', ' ');
  while (!s.empty() && s.back() == ' ') {
    s.pop_back();
  }
  return s.empty() ? std::string("unknown libpcap error") : s;
}

// pcap_datalink() gives DLT_ values; files and decode speak LINKTYPE_. They
// differ only for a few types, of which raw IP is the one seen on Linux.
std::uint32_t dlt_to_linktype(int dlt) {
  if (dlt == DLT_RAW) {
    return kLinktypeRaw;
  }
  return static_cast<std::uint32_t>(dlt);
}

int linktype_to_dlt(std::uint32_t link_type) {
  return link_type == kLinktypeRaw ? DLT_RAW : static_cast<int>(link_type);
}

std::string self_path() {
  std::array<char, PATH_MAX> buf{};
  const ssize_t n = ::readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  if (n <= 0) {
    return "traffic-analyzer";
  }
  return {buf.data(), static_cast<std::size_t>(n)};
}

std::string permission_hint(const std::string &name) {
  return name +
         ": permission denied: run as root or grant the binary cap_net_raw,cap_net_admin "
         "(setcap cap_net_raw,cap_net_admin+eip " +
         self_path() + ")";
}

Status activate_error(const std::string &name, int rc, pcap_t *p) {
  switch (rc) {
  case PCAP_ERROR_NO_SUCH_DEVICE:
    return Status::not_found(name + ": no such interface (see `ip link`)");
  case PCAP_ERROR_PERM_DENIED:
  case PCAP_ERROR_PROMISC_PERM_DENIED:
    return Status::permission_denied(permission_hint(name));
  case PCAP_ERROR_IFACE_NOT_UP:
    return Status::unavailable(name + ": interface is down (bring it up: ip link set " + name +
                               " up)");
  case PCAP_ERROR_RFMON_NOTSUP:
  case PCAP_ERROR_NOT_RFMON:
    return Status::unsupported(name + ": monitor mode is not supported on this interface");
  case PCAP_ERROR_CANTSET_TSTAMP_TYPE:
  case PCAP_ERROR_TSTAMP_PRECISION_NOTSUP:
    return Status::unsupported(name + ": the interface cannot give microsecond timestamps (" +
                               one_line(pcap_geterr(p)) + ")");
  default:
    return Status::io_error(name + ": cannot capture: " + one_line(pcap_geterr(p)));
  }
}

std::string warning_text(const std::string &name, int rc, pcap_t *p) {
  switch (rc) {
  case PCAP_WARNING_PROMISC_NOTSUP:
    return name + ": warning: promiscuous mode not supported";
  case PCAP_WARNING_TSTAMP_TYPE_NOTSUP:
    return name + ": warning: requested timestamp type not supported; using the default";
  default:
    return name + ": warning: " + one_line(pcap_geterr(p));
  }
}

// pcap_stats() counters are u_int and wrap; keep 64-bit totals by adding
// the (modulo 2^32) difference since the last read.
struct WrappingCounter {
  std::uint32_t last = 0;
  std::uint64_t total = 0;
  void update(std::uint32_t now) {
    total += static_cast<std::uint32_t>(now - last);
    last = now;
  }
};

using FrameCallback = std::function<void(std::size_t, const Frame &)>;

struct DispatchContext {
  const FrameCallback *on_frame = nullptr;
  std::size_t index = 0;
  pcap_t *pcap = nullptr;
  bool failed = false;
  std::string error;
};

// libpcap is C: an exception must not unwind through pcap_dispatch. The
// callback's exception becomes an error and the dispatch is cut short.
void dispatch_trampoline(u_char *user, const pcap_pkthdr *hdr, const u_char *bytes) noexcept {
  auto *ctx = reinterpret_cast<DispatchContext *>(user);
  if (ctx->failed) {
    return;
  }
  Frame frame;
  frame.ts_us = static_cast<TimeUs>(hdr->ts.tv_sec) * 1'000'000 + hdr->ts.tv_usec;
  frame.wire_length = hdr->len;
  frame.data = Bytes(reinterpret_cast<const std::byte *>(bytes), hdr->caplen);
  try {
    (*ctx->on_frame)(ctx->index, frame);
  } catch (const std::exception &e) {
    ctx->failed = true;
    ctx->error = std::string("frame handler failed: ") + e.what();
    pcap_breakloop(ctx->pcap);
  } catch (...) {
    ctx->failed = true;
    ctx->error = "frame handler failed: unknown exception";
    pcap_breakloop(ctx->pcap);
  }
}

Status compile_and_set(pcap_t *p, const std::string &name, const std::string &filter) {
  bpf_program program{};
  if (pcap_compile(p, &program, filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0) {
    return Status::invalid_argument(name + ": bad capture filter \"" + filter +
                                    "\": " + one_line(pcap_geterr(p)) + " (see man pcap-filter)");
  }
  const int rc = pcap_setfilter(p, &program);
  pcap_freecode(&program);
  if (rc != 0) {
    return Status::io_error(name + ": cannot install capture filter: " + one_line(pcap_geterr(p)));
  }
  return {};
}

} // namespace

struct LiveCapture::Impl {
  struct Interface {
    std::string name;
    pcap_t *pcap = nullptr;
    std::uint32_t link_type = 0;
    // Index at open; 0 for "any", which is never checked.
    unsigned ifindex = 0;
    bool down = false;
    WrappingCounter received;
    WrappingCounter dropped;
    WrappingCounter if_dropped;
  };
  std::vector<Interface> ifaces;
  // pollfds[0] is the wake eventfd, pollfds[i + 1] interface i.
  std::vector<pollfd> pollfds;
  int wake_fd = -1;
  std::uint32_t snaplen = 0;

  ~Impl() {
    for (auto &i : ifaces) {
      if (i.pcap != nullptr) {
        pcap_close(i.pcap);
      }
    }
    if (wake_fd >= 0) {
      ::close(wake_fd);
    }
  }
};

Result<std::unique_ptr<LiveCapture>> LiveCapture::open(const LiveOptions &options) {
  if (options.interfaces.empty()) {
    return Status::invalid_argument("no interface to capture on (name one, or `any`)");
  }
  std::unique_ptr<LiveCapture> cap(new LiveCapture());
  cap->impl_ = std::make_unique<Impl>();
  Impl &impl = *cap->impl_;
  impl.snaplen = options.snaplen;
  impl.wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (impl.wake_fd < 0) {
    return Status::io_error(std::string("cannot create the capture wake-up eventfd: ") +
                            std::strerror(errno));
  }
  impl.pollfds.push_back(pollfd{impl.wake_fd, POLLIN, 0});

  const int snaplen = static_cast<int>(std::min<std::uint32_t>(options.snaplen, INT_MAX));
  const int buffer = static_cast<int>(std::min<std::uint32_t>(options.buffer_bytes, INT_MAX));
  for (const std::string &name : options.interfaces) {
    if (name.empty()) {
      return Status::invalid_argument("empty interface name (name one, or `any`)");
    }
    std::array<char, PCAP_ERRBUF_SIZE> errbuf{};
    pcap_t *p = pcap_create(name.c_str(), errbuf.data());
    if (p == nullptr) {
      return Status::io_error(name + ": cannot capture: " + one_line(errbuf.data()));
    }
    // Owned by impl from here, so every early return closes it.
    impl.ifaces.push_back(Impl::Interface{name, p, 0, 0, false, {}, {}, {}});

    // The setters only fail on an activated handle, which this is not.
    (void)pcap_set_snaplen(p, snaplen);
    (void)pcap_set_buffer_size(p, buffer);
    (void)pcap_set_promisc(p, 0);
    (void)pcap_set_tstamp_precision(p, PCAP_TSTAMP_PRECISION_MICRO);
    if (options.immediate) {
      (void)pcap_set_immediate_mode(p, 1);
    } else {
      // TPACKET_V3: the kernel hands a block over when it is full or this
      // old, so this bounds how late a frame can be.
      (void)pcap_set_timeout(p, std::max(1, options.timeout_ms));
    }

    const int rc = pcap_activate(p);
    if (rc < 0) {
      return activate_error(name, rc, p);
    }
    if (rc > 0) {
      cap->warnings_.push_back(warning_text(name, rc, p));
    }

#ifdef __linux__
    // libpcap 1.10 offers the cooked types only on "any"; on a named
    // interface pcap_set_datalink() refuses them and the native type stays.
    // They must be chosen before the filter is compiled: BPF offsets differ.
    if (options.cooked) {
#ifdef DLT_LINUX_SLL2
      if (pcap_set_datalink(p, DLT_LINUX_SLL2) != 0) {
        (void)pcap_set_datalink(p, DLT_LINUX_SLL);
      }
#else
      (void)pcap_set_datalink(p, DLT_LINUX_SLL);
#endif
    }
#endif
    impl.ifaces.back().link_type = dlt_to_linktype(pcap_datalink(p));

    if (!options.filter.empty()) {
      if (Status st = compile_and_set(p, name, options.filter); !st) {
        return st;
      }
    }
    if (pcap_setnonblock(p, 1, errbuf.data()) != 0) {
      return Status::io_error(
          name + ": cannot switch to non-blocking capture: " + one_line(errbuf.data()));
    }
    const int fd = pcap_get_selectable_fd(p);
    if (fd < 0) {
      return Status::unsupported(name + ": this platform cannot poll the capture handle");
    }
    impl.pollfds.push_back(pollfd{fd, POLLIN, 0});
    impl.ifaces.back().ifindex = name == "any" ? 0U : ::if_nametoindex(name.c_str());
  }
  return cap;
}

std::string LiveCapture::default_filter(const std::vector<std::uint16_t> &ports) {
  // No inbound/outbound qualifiers: on a named (non-cooked) Linux interface
  // libpcap's direction test dropped about half of a veth's frames in both
  // directions (measured: 25 of 66 delivered), so direction is left to the
  // analyzer (packet type on `any`, DNS-learnt local hosts elsewhere).
  if (ports.empty()) {
    return {};
  }
  std::vector<std::uint16_t> unique;
  for (const std::uint16_t p : ports) {
    if (std::find(unique.begin(), unique.end(), p) == unique.end()) {
      unique.push_back(p);
    }
  }
  if (std::find(unique.begin(), unique.end(), std::uint16_t{53}) == unique.end()) {
    unique.push_back(53);
  }
  std::string f;
  for (std::size_t i = 0; i < unique.size(); ++i) {
    f += (i == 0 ? "port " : " or port ") + std::to_string(unique[i]);
  }
  return f;
}

Status LiveCapture::check_filter(const std::string &filter, std::uint32_t link_type) {
  pcap_t *p = pcap_open_dead(linktype_to_dlt(link_type), 262144);
  if (p == nullptr) {
    return Status::unsupported("cannot check capture filter: link type " +
                               std::to_string(link_type) + " unknown");
  }
  bpf_program program{};
  Status st;
  if (pcap_compile(p, &program, filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) == 0) {
    pcap_freecode(&program);
  } else {
    st = Status::invalid_argument("bad capture filter \"" + filter + "\" for link type " +
                                  std::to_string(link_type) + ": " + one_line(pcap_geterr(p)) +
                                  " (see man pcap-filter)");
  }
  pcap_close(p);
  return st;
}

LiveCapture::~LiveCapture() = default;

std::size_t LiveCapture::interface_count() const noexcept {
  return impl_->ifaces.size();
}

const std::string &LiveCapture::interface_name(std::size_t index) const noexcept {
  return impl_->ifaces[index].name;
}

std::uint32_t LiveCapture::link_type(std::size_t index) const noexcept {
  return impl_->ifaces[index].link_type;
}

std::uint32_t LiveCapture::snaplen() const noexcept {
  return impl_->snaplen;
}

int LiveCapture::poll_once(int timeout_ms, const FrameCallback &on_frame) {
  auto &fds = impl_->pollfds;
  for (pollfd &f : fds) {
    f.revents = 0;
  }
  const int ready = ::poll(fds.data(), fds.size(), timeout_ms);
  if (ready < 0) {
    if (errno == EINTR) {
      return 0; // a signal: the caller checks its flags and polls again
    }
    error_ = std::string("poll on capture handles failed: ") + std::strerror(errno);
    return -1;
  }
  if ((fds[0].revents & POLLIN) != 0) {
    std::uint64_t count = 0;
    // Reading resets the eventfd counter: one read consumes every wake().
    (void)!::read(impl_->wake_fd, &count, sizeof count);
  }
  int total = 0;
  for (std::size_t i = 1; i < fds.size(); ++i) {
    // Dispatch every handle, ready or not (non-blocking: 0 when empty).
    // With TPACKET_V3, libpcap's selectable fd does not become readable for
    // frames in a ring block the kernel has not retired yet
    // (pcap_get_required_select_timeout), so polling alone delays frames
    // and, on stop, leaves the last ones unread.
    const short revents = fds[i].revents;
    Impl::Interface &iface = impl_->ifaces[i - 1];
    if ((revents & POLLNVAL) != 0) {
      error_ = iface.name + ": capture handle was closed underneath the capture";
      return -1;
    }
    DispatchContext ctx;
    ctx.on_frame = &on_frame;
    ctx.index = i - 1;
    ctx.pcap = iface.pcap;
    const int n = pcap_dispatch(iface.pcap, kMaxFramesPerDispatch, &dispatch_trampoline,
                                reinterpret_cast<u_char *>(&ctx));
    if (ctx.failed) {
      error_ = iface.name + ": " + ctx.error;
      return -1;
    }
    if (n < 0) {
      error_ = iface.name + ": capture failed: " + one_line(pcap_geterr(iface.pcap)) +
               " (check `ip link`; restart the capture)";
      return -1;
    }
    // The kernel signals "down" and removal with ENETDOWN (POLLERR).
    // libpcap 1.10 reads and clears it: a removal it reports as an error, a
    // mere "down" it swallows (0 packets). Removing an interface that is
    // already down raises nothing, so the capture would go silent forever:
    // track down-ness and re-check those interfaces on every call.
    if ((revents & (POLLERR | POLLHUP)) != 0 && !check_interface(i - 1)) {
      return -1;
    }
    total += n;
  }
  for (std::size_t i = 0; i < impl_->ifaces.size(); ++i) {
    if (impl_->ifaces[i].down && !check_interface(i)) {
      return -1;
    }
  }
  return total;
}

bool LiveCapture::check_interface(std::size_t index) {
  Impl::Interface &iface = impl_->ifaces[index];
  if (iface.ifindex == 0) {
    return true;
  }
  const unsigned now = ::if_nametoindex(iface.name.c_str());
  if (now != iface.ifindex) {
    // Gone, or gone and recreated: the socket stays bound to the old index
    // and would never see a packet again.
    error_ = iface.name + ": interface disappeared; capture stopped (restart once `ip link` " +
             "shows it again)";
    return false;
  }
  ifreq req{};
  iface.name.copy(req.ifr_name, sizeof req.ifr_name - 1);
  if (::ioctl(pcap_fileno(iface.pcap), SIOCGIFFLAGS, &req) == 0) {
    // Down is not fatal: the kernel resumes the capture when it comes up.
    iface.down = (req.ifr_flags & IFF_UP) == 0;
  }
  return true;
}

void LiveCapture::wake() const noexcept {
  const int saved = errno;
  const std::uint64_t one = 1;
  // EAGAIN (counter saturated) still leaves the fd readable: nothing lost.
  (void)!::write(impl_->wake_fd, &one, sizeof one);
  errno = saved;
}

std::vector<InterfaceStats> LiveCapture::stats() {
  std::vector<InterfaceStats> out;
  out.reserve(impl_->ifaces.size());
  for (Impl::Interface &iface : impl_->ifaces) {
    pcap_stat st{};
    if (pcap_stats(iface.pcap, &st) == 0) {
      iface.received.update(st.ps_recv);
      iface.dropped.update(st.ps_drop);
      iface.if_dropped.update(st.ps_ifdrop);
    }
    InterfaceStats s;
    s.name = iface.name;
    s.link_type = iface.link_type;
    s.received = iface.received.total;
    s.dropped = iface.dropped.total;
    s.if_dropped = iface.if_dropped.total;
    s.up = !iface.down;
    out.push_back(std::move(s));
  }
  return out;
}

namespace {

bool capabilities(__user_cap_data_struct (&data)[_LINUX_CAPABILITY_U32S_3]) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  return ::syscall(SYS_capget, &header, &data[0]) == 0;
}

bool holds_any_capability() {
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3]{};
  if (!capabilities(data)) {
    return true; // cannot tell: assume the worst
  }
  for (const auto &d : data) {
    if (d.effective != 0 || d.permitted != 0) {
      return true;
    }
  }
  return false;
}

Status clear_capabilities() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3]{};
  if (::syscall(SYS_capset, &header, &data[0]) != 0 || holds_any_capability()) {
    return Status::permission_denied(std::string("cannot drop capabilities: ") +
                                     std::strerror(errno));
  }
  return {};
}

} // namespace

Status drop_privileges(const std::string &user) {
  if (user.empty()) {
    return Status::invalid_argument("cannot drop privileges: empty user name");
  }
  long size = ::sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buf(size > 0 ? static_cast<std::size_t>(size) : 16384);
  passwd pw{};
  passwd *found = nullptr;
  int rc = 0;
  while ((rc = ::getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found)) == ERANGE) {
    buf.resize(buf.size() * 2);
  }
  if (found == nullptr) {
    std::string m = "user " + user + ": " +
                    (rc != 0 ? std::string(std::strerror(rc)) : std::string("no such user")) +
                    " (create it: useradd --system --no-create-home " + user + ")";
    return Status::not_found(std::move(m));
  }
  const uid_t uid = pw.pw_uid;
  const gid_t gid = pw.pw_gid;
  if (uid == 0) {
    return Status::invalid_argument("user " + user +
                                    ": is root (uid 0); name an unprivileged user");
  }

  if (::geteuid() != 0) {
    // Not root: only "become who we already are", shedding file capabilities.
    if (::getuid() != uid || ::geteuid() != uid) {
      return Status::permission_denied("cannot switch to user " + user +
                                       ": only root can (running as uid " +
                                       std::to_string(::geteuid()) + ")");
    }
    return clear_capabilities();
  }

  // Supplementary groups first (root's must go), then gid, then uid: after
  // setuid nothing else can be changed.
  if (::initgroups(pw.pw_name, gid) != 0 && ::setgroups(1, &gid) != 0) {
    return Status::permission_denied("cannot set the groups of user " + user + ": " +
                                     std::strerror(errno));
  }
  if (::setgid(gid) != 0) {
    return Status::permission_denied("cannot switch to group " + std::to_string(gid) + " of user " +
                                     user + ": " + std::strerror(errno));
  }
  // As root, setuid() sets the real, effective and saved uid alike.
  if (::setuid(uid) != 0) {
    return Status::permission_denied("cannot switch to user " + user + ": " + std::strerror(errno));
  }
  if (::setuid(0) == 0 || ::seteuid(0) == 0) {
    return Status::failure("switched to user " + user +
                           " but root can be regained; refusing to continue");
  }
  if (::getuid() != uid || ::geteuid() != uid || ::getgid() != gid || ::getegid() != gid) {
    return Status::failure("switching to user " + user +
                           " left another uid/gid in place; refusing to continue");
  }
  // The kernel clears capabilities on a switch away from uid 0 unless
  // SECBIT_KEEP_CAPS was set; make sure none survived.
  if (holds_any_capability()) {
    return clear_capabilities();
  }
  return {};
}

} // namespace ta::capture
