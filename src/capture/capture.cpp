#include "ta/capture/capture.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <pcap/pcap.h>
#include <sys/stat.h>

namespace ta::capture {

namespace {

// Classic pcap, version 2.4: a 24-byte file header (magic, version 2.4,
// reserved, snaplen, link type), then records of a 16-byte header (seconds,
// µs or ns, captured length, wire length; all 32-bit in the writer's byte
// order, the times signed as libpcap reads them) and the captured bytes.
constexpr std::uint32_t kMagicMicro = 0xa1b2c3d4U;
constexpr std::uint32_t kMagicNano = 0xa1b23c4dU;
constexpr std::size_t kFileHeader = 24;
constexpr std::size_t kRecordHeader = 16;
// libpcap's largest snapshot length for all but three link types; a longer
// record is left to libpcap, which knows the exceptions.
constexpr std::uint32_t kMaxCaplen = 262144;
constexpr std::size_t kBuffer = std::size_t{1} << 20U;

std::uint32_t load32(const std::byte *p, bool swapped) noexcept {
  std::uint32_t v = 0;
  std::memcpy(&v, p, 4);
  return swapped ? __builtin_bswap32(v) : v;
}

// Seconds and µs into one µs count. pcapng times are 64-bit, so a hostile
// file can ask for more than an int64 of µs holds: such a time saturates
// (and is far outside any --since/--until a user gives) instead of wrapping.
TimeUs to_us(std::int64_t sec, std::int64_t usec) noexcept {
  TimeUs us = 0;
  if (__builtin_mul_overflow(sec, std::int64_t{1'000'000}, &us) ||
      __builtin_add_overflow(us, usec, &us)) {
    return sec < 0 ? std::numeric_limits<TimeUs>::min() : std::numeric_limits<TimeUs>::max();
  }
  return us;
}

} // namespace

// Classic pcap files are read here directly, in 1 MiB preads with the
// records parsed in place: libpcap reads through stdio 4 KiB per system call
// and copies each record twice (header, then data), which cost as much as
// the rest of reading. Everything else goes through libpcap: pcapng and
// other versions from the start; and from the record where it happens, any
// record that is not plainly good (a captured length over the snapshot
// length or the usual maximum, a short record) and the end of the file,
// by seeking libpcap's stream to that record. So ends, errors and their
// messages stay libpcap's, and a file that grows while read is read as far
// as libpcap would read it.
struct FileReader::Impl {
  pcap_t *pcap = nullptr;
  bool direct = false;
  bool swapped = false;
  bool nanos = false;
  std::uint32_t snaplen = 0;
  int fd = -1;
  std::vector<std::byte> buf;
  std::size_t begin = 0;   // next record in buf
  std::size_t end = 0;     // bytes held in buf
  std::int64_t buf_at = 0; // file offset of buf[0]

  ~Impl() {
    if (pcap != nullptr) {
      pcap_close(pcap);
    }
  }

  void start_direct() {
    FILE *f = pcap_file(pcap);
    if (f == nullptr) {
      return;
    }
    fd = fileno(f);
    std::array<std::byte, kFileHeader> h{};
    if (fd < 0 || pread(fd, h.data(), h.size(), 0) != static_cast<ssize_t>(h.size())) {
      return;
    }
    std::uint32_t magic = 0;
    std::memcpy(&magic, h.data(), 4);
    swapped = magic == __builtin_bswap32(kMagicMicro) || magic == __builtin_bswap32(kMagicNano);
    if (swapped) {
      magic = __builtin_bswap32(magic);
    }
    if (magic != kMagicMicro && magic != kMagicNano) {
      return;
    }
    nanos = magic == kMagicNano;
    std::uint16_t major = 0;
    std::uint16_t minor = 0;
    std::memcpy(&major, h.data() + 4, 2);
    std::memcpy(&minor, h.data() + 6, 2);
    if (swapped) {
      major = __builtin_bswap16(major);
      minor = __builtin_bswap16(minor);
    }
    if (major != 2 || minor != 4) {
      return;
    }
    // libpcap's snapshot length (it replaces a zero or huge header value).
    snaplen = static_cast<std::uint32_t>(pcap_snapshot(pcap));
    buf.resize(kBuffer);
    buf_at = static_cast<std::int64_t>(kFileHeader);
    direct = true;
  }

  // Moves the unread bytes to the front and reads until the buffer is full
  // or the file ends.
  void refill() noexcept {
    std::memmove(buf.data(), buf.data() + begin, end - begin);
    buf_at += static_cast<std::int64_t>(begin);
    end -= begin;
    begin = 0;
    while (end < buf.size()) {
      const ssize_t n = pread(fd, buf.data() + end, buf.size() - end,
                              static_cast<off_t>(buf_at + static_cast<std::int64_t>(end)));
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n <= 0) {
        return;
      }
      end += static_cast<std::size_t>(n);
    }
  }

  // The next plainly good record, or false (nothing consumed) when it is
  // libpcap's to read.
  bool next_direct(Frame &out) noexcept {
    if (end - begin < kRecordHeader) {
      refill();
      if (end - begin < kRecordHeader) {
        return false;
      }
    }
    const std::byte *h = buf.data() + begin;
    const std::uint32_t caplen = load32(h + 8, swapped);
    if (caplen > snaplen || caplen > kMaxCaplen) {
      return false;
    }
    if (end - begin < kRecordHeader + caplen) {
      refill();
      if (end - begin < kRecordHeader + caplen) {
        return false;
      }
      h = buf.data() + begin;
    }
    // As libpcap reads them: in the file's byte order the fields are signed
    // 32-bit; byte-swapped they come out unsigned (its swap yields an
    // unsigned value). Only absurd times (before 1970, after 2038) differ.
    const std::uint32_t raw_sec = load32(h, swapped);
    const std::uint32_t raw_frac = load32(h + 4, swapped);
    const std::int64_t sec =
        swapped ? std::int64_t{raw_sec} : std::int64_t{static_cast<std::int32_t>(raw_sec)};
    const std::int64_t frac =
        swapped ? std::int64_t{raw_frac} : std::int64_t{static_cast<std::int32_t>(raw_frac)};
    out.ts_us = to_us(sec, nanos ? frac / 1000 : frac);
    out.wire_length = load32(h + 12, swapped);
    out.data = Bytes(h + kRecordHeader, caplen);
    begin += kRecordHeader + caplen;
    return true;
  }

  // Hands reading to libpcap at the next unread record; false when its
  // stream cannot be moved there.
  bool leave_direct() noexcept {
    direct = false;
    return std::fseek(pcap_file(pcap), static_cast<long>(buf_at + static_cast<std::int64_t>(begin)),
                      SEEK_SET) == 0;
  }
};

namespace {

// The checked open behind FileOpen::regular*: O_NONBLOCK so that a FIFO put
// in the file's place cannot block, O_NOFOLLOW so that a link is refused
// (ELOOP), then fstat(2) on what was opened.
Result<FILE *> open_regular(const std::string &path, bool follow) {
  const int fd = ::open(path.c_str(),
                        O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY | (follow ? 0 : O_NOFOLLOW));
  if (fd < 0) {
    const int err = errno;
    if (err == ELOOP && !follow) {
      return Status::unsupported(path + ": a symbolic link, not followed");
    }
    if (err == ENOENT) {
      return Status::not_found(path + ": no such file");
    }
    return Status::invalid_argument(path + ": cannot open (" + std::strerror(err) + ")");
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::unsupported(path + ": not a regular file");
  }
  // Regular files never block; reads go on as usual.
  (void)::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  FILE *f = ::fdopen(fd, "rb");
  if (f == nullptr) {
    const int err = errno;
    ::close(fd);
    return Status::invalid_argument(path + ": cannot open (" + std::strerror(err) + ")");
  }
  return f;
}

} // namespace

Result<std::unique_ptr<FileReader>> FileReader::open(const std::string &path, FileOpen how) {
  std::array<char, PCAP_ERRBUF_SIZE> errbuf{};
  // Ask libpcap for µs precision: it scales nanosecond pcap/pcapng
  // timestamps down (truncating), so every source has one time unit.
  pcap_t *p = nullptr;
  if (how == FileOpen::any) {
    p = pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_MICRO,
                                                errbuf.data());
  } else {
    auto f = open_regular(path, how == FileOpen::regular);
    if (!f) {
      return f.status();
    }
    // libpcap owns the stream once it succeeds (pcap_close closes it).
    p = pcap_fopen_offline_with_tstamp_precision(*f, PCAP_TSTAMP_PRECISION_MICRO, errbuf.data());
    if (p == nullptr) {
      std::fclose(*f);
    }
  }
  if (p == nullptr) {
    return Status::invalid_argument(path + ": not a readable capture file (" + errbuf.data() + ")");
  }
  std::unique_ptr<FileReader> r(new FileReader());
  r->impl_ = std::make_unique<Impl>();
  r->impl_->pcap = p;
  r->impl_->start_direct();
  r->path_ = path;
  return r;
}

FileReader::~FileReader() = default;

std::uint32_t FileReader::link_type() const noexcept {
  // pcap_datalink returns the DLT_ value; the file carries LINKTYPE_ values
  // and libpcap maps a few of them (LINKTYPE_RAW 101 -> DLT_RAW 12 or 14 on
  // some platforms). Undo that so callers see the file's LINKTYPE_.
  const int dlt = pcap_datalink(impl_->pcap);
  switch (dlt) {
  case DLT_RAW:
    return 101;
#ifdef DLT_LOOP
  case DLT_LOOP:
    return 108;
#endif
  default:
    return static_cast<std::uint32_t>(dlt);
  }
}

std::uint32_t FileReader::snaplen() const noexcept {
  return static_cast<std::uint32_t>(pcap_snapshot(impl_->pcap));
}

ReadStatus FileReader::next(Frame &out) noexcept {
  if (impl_->direct) {
    if (impl_->next_direct(out)) {
      ++frames_;
      return ReadStatus::frame;
    }
    if (!impl_->leave_direct()) {
      // Not expected of a file that pread could read; reported like damage
      // (the contract of `error`) rather than read twice from the start.
      status_ =
          Status::corrupt(path_ + ": capture unreadable after frame " + std::to_string(frames_) +
                          ": cannot seek (" + std::strerror(errno) + ")");
      return ReadStatus::error;
    }
  }
  pcap_pkthdr *hdr = nullptr;
  const u_char *data = nullptr;
  const int rc = pcap_next_ex(impl_->pcap, &hdr, &data);
  if (rc == 1) {
    ++frames_;
    out.ts_us = to_us(hdr->ts.tv_sec, hdr->ts.tv_usec);
    out.wire_length = hdr->len;
    out.data = Bytes(reinterpret_cast<const std::byte *>(data), hdr->caplen);
    return ReadStatus::frame;
  }
  if (rc == PCAP_ERROR_BREAK) {
    return ReadStatus::end;
  }
  // A truncated or corrupt record. libpcap names the problem; we add where.
  long offset = -1;
  if (FILE *f = pcap_file(impl_->pcap); f != nullptr) {
    offset = std::ftell(f);
  }
  char buf[512];
  std::snprintf(buf, sizeof buf, "%s: capture damaged after frame %llu (byte offset %ld): %s",
                path_.c_str(), static_cast<unsigned long long>(frames_), offset,
                pcap_geterr(impl_->pcap));
  status_ = Status::corrupt(buf);
  return ReadStatus::error;
}

struct PcapWriter::Impl {
  pcap_t *dead = nullptr;
  pcap_dumper_t *dumper = nullptr;
  ~Impl() {
    if (dumper != nullptr) {
      pcap_dump_close(dumper);
    }
    if (dead != nullptr) {
      pcap_close(dead);
    }
  }
};

Result<std::unique_ptr<PcapWriter>>
PcapWriter::open(const std::string &path, std::uint32_t link_type, std::uint32_t snaplen) {
  std::unique_ptr<PcapWriter> w(new PcapWriter());
  w->impl_ = std::make_unique<Impl>();
  // pcap_open_dead takes a DLT_ value; LINKTYPE_RAW (101) is the one common
  // type whose DLT_ differs, and libpcap writes it back as 101.
  const int dlt = link_type == 101 ? DLT_RAW : static_cast<int>(link_type);
  w->impl_->dead = pcap_open_dead_with_tstamp_precision(dlt, static_cast<int>(snaplen),
                                                        PCAP_TSTAMP_PRECISION_MICRO);
  if (w->impl_->dead == nullptr) {
    return Status::unsupported(path + ": cannot create a capture of link type " +
                               std::to_string(link_type));
  }
  // 0640 (less where the umask says so): captures hold private traffic.
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) {
    return Status::io_error(path + ": cannot write (" + std::strerror(errno) + ")");
  }
  FILE *f = ::fdopen(fd, "wb");
  if (f == nullptr) {
    const int err = errno;
    ::close(fd);
    return Status::io_error(path + ": cannot write (" + std::strerror(err) + ")");
  }
  // On failure libpcap has closed `f`.
  w->impl_->dumper = pcap_dump_fopen(w->impl_->dead, f);
  if (w->impl_->dumper == nullptr) {
    return Status::io_error(path + ": cannot write (" + pcap_geterr(w->impl_->dead) + ")");
  }
  return w;
}

PcapWriter::~PcapWriter() = default;

void PcapWriter::write(TimeUs ts_us, Bytes data, std::uint32_t wire_length) noexcept {
  pcap_pkthdr hdr{};
  hdr.ts.tv_sec = static_cast<time_t>(ts_us / 1'000'000);
  hdr.ts.tv_usec = static_cast<suseconds_t>(ts_us % 1'000'000);
  hdr.caplen = static_cast<bpf_u_int32>(data.size());
  hdr.len = wire_length != 0 ? wire_length : static_cast<bpf_u_int32>(data.size());
  pcap_dump(reinterpret_cast<u_char *>(impl_->dumper), &hdr,
            reinterpret_cast<const u_char *>(data.data()));
}

Status PcapWriter::close() {
  if (impl_->dumper == nullptr) {
    return {};
  }
  const bool flushed = pcap_dump_flush(impl_->dumper) == 0;
  FILE *f = pcap_dump_file(impl_->dumper);
  const bool ok = flushed && f != nullptr && std::ferror(f) == 0;
  pcap_dump_close(impl_->dumper);
  impl_->dumper = nullptr;
  if (!ok) {
    return Status::io_error(std::string("capture write failed: ") + std::strerror(errno));
  }
  return {};
}

Result<std::string> fingerprint_file(const std::string &path) {
  auto opened = FileReader::open(path);
  if (!opened) {
    return opened.status();
  }
  const std::unique_ptr<FileReader> reader = std::move(opened).value();
  Frame frame;
  switch (reader->next(frame)) {
  case ReadStatus::end:
    return std::string();
  case ReadStatus::error:
    return reader->status();
  case ReadStatus::frame:
    break;
  }
  return fingerprint_first_frame(reader->link_type(), frame);
}

std::string fingerprint_first_frame(std::uint32_t link_type, const Frame &first) {
  const Frame &frame = first;
  // FNV-1a 64: an identity, not a defence against forged collisions.
  std::uint64_t h = 0xcbf29ce484222325ULL;
  auto mix = [&h](const void *data, std::size_t n) {
    const auto *p = static_cast<const unsigned char *>(data);
    for (std::size_t i = 0; i < n; ++i) {
      h ^= p[i];
      h *= 0x100000001b3ULL;
    }
  };
  const std::uint32_t link = link_type;
  const auto caplen = static_cast<std::uint32_t>(frame.data.size());
  mix(&link, sizeof link);
  mix(&frame.ts_us, sizeof frame.ts_us);
  mix(&frame.wire_length, sizeof frame.wire_length);
  mix(&caplen, sizeof caplen);
  mix(frame.data.data(), frame.data.size());
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return std::string(hex);
}

} // namespace ta::capture
