// A capture file's bytes through FileReader, against libpcap alone.
//
// FileReader parses classic pcap records itself and hands anything unusual
// (pcapng, odd records, the end of the file) to libpcap (see
// src/capture/capture.cpp). The contract is that this changes nothing a
// caller can see: the same frames, with the same timestamps, lengths and
// bytes, and the same end (a clean end, or damage after the same frame). So
// every input is read both ways and compared; any difference aborts.
#include <unistd.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>

#include <pcap/pcap.h>
#include <sys/mman.h>

#include "ta/capture/capture.hpp"

namespace {

void fail(const char *what, std::uint64_t frame) {
  std::fprintf(stderr, "pcap_file_fuzz: %s at frame %llu\n", what,
               static_cast<unsigned long long>(frame));
  std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  // A file in memory, opened by path like any capture.
  const int fd = memfd_create("pcap_file_fuzz", MFD_CLOEXEC);
  if (fd < 0) {
    return 0;
  }
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = write(fd, data + done, size - done);
    if (n <= 0) {
      close(fd);
      return 0;
    }
    done += static_cast<std::size_t>(n);
  }
  const std::string path = "/proc/self/fd/" + std::to_string(fd);

  std::array<char, PCAP_ERRBUF_SIZE> errbuf{};
  pcap_t *ref = pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_MICRO,
                                                        errbuf.data());
  auto reader = ta::capture::FileReader::open(path);
  if ((ref == nullptr) != !reader.ok()) {
    fail("open disagrees", 0);
  }
  if (ref == nullptr) {
    close(fd);
    return 0;
  }
  std::uint64_t frame = 0;
  for (;;) {
    ta::capture::Frame got;
    const ta::capture::ReadStatus st = (*reader)->next(got);
    pcap_pkthdr *hdr = nullptr;
    const u_char *bytes = nullptr;
    const int rc = pcap_next_ex(ref, &hdr, &bytes);
    if (rc == 1) {
      if (st != ta::capture::ReadStatus::frame) {
        fail("libpcap read a frame, FileReader did not", frame);
      }
      // The contract: µs, saturated at the int64 range (pcapng times are 64-bit).
      const __int128 wide = static_cast<__int128>(hdr->ts.tv_sec) * 1'000'000 + hdr->ts.tv_usec;
      const auto lo = static_cast<__int128>(std::numeric_limits<ta::TimeUs>::min());
      const auto hi = static_cast<__int128>(std::numeric_limits<ta::TimeUs>::max());
      const auto ts = static_cast<ta::TimeUs>(
          wide < lo || (wide > hi && hdr->ts.tv_sec < 0) ? lo : (wide > hi ? hi : wide));
      if (got.ts_us != ts || got.wire_length != hdr->len || got.data.size() != hdr->caplen ||
          (hdr->caplen != 0 && std::memcmp(got.data.data(), bytes, hdr->caplen) != 0)) {
        fail("frames differ", frame);
      }
      ++frame;
      continue;
    }
    if (rc == PCAP_ERROR_BREAK) {
      if (st != ta::capture::ReadStatus::end) {
        fail("libpcap ended cleanly, FileReader did not", frame);
      }
    } else if (st != ta::capture::ReadStatus::error) {
      fail("libpcap found damage, FileReader did not", frame);
    }
    break;
  }
  pcap_close(ref);
  reader->reset(); // the reader closes before its file
  close(fd);
  return 0;
}
