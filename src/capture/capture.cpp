#include "ta/capture/capture.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include <pcap/pcap.h>

namespace ta::capture {

struct FileReader::Impl {
  pcap_t *pcap = nullptr;
  ~Impl() {
    if (pcap != nullptr) {
      pcap_close(pcap);
    }
  }
};

Result<std::unique_ptr<FileReader>> FileReader::open(const std::string &path) {
  std::array<char, PCAP_ERRBUF_SIZE> errbuf{};
  // Ask libpcap for µs precision: it scales nanosecond pcap/pcapng
  // timestamps down (truncating), so every source has one time unit.
  pcap_t *p = pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_MICRO,
                                                      errbuf.data());
  if (p == nullptr) {
    return Status::invalid_argument(path + ": not a readable capture file (" + errbuf.data() + ")");
  }
  std::unique_ptr<FileReader> r(new FileReader());
  r->impl_ = std::make_unique<Impl>();
  r->impl_->pcap = p;
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
  pcap_pkthdr *hdr = nullptr;
  const u_char *data = nullptr;
  const int rc = pcap_next_ex(impl_->pcap, &hdr, &data);
  if (rc == 1) {
    ++frames_;
    out.ts_us = static_cast<TimeUs>(hdr->ts.tv_sec) * 1'000'000 + hdr->ts.tv_usec;
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
