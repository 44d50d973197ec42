#include "dns_writer.hpp"

#include <cstring>

#include "frame.hpp"

namespace ta::generate::detail {

DnsWriter::DnsWriter(std::uint8_t *out, std::size_t capacity) noexcept
    : out_(out), capacity_(capacity) {}

void DnsWriter::u8(std::uint8_t v) noexcept {
  raw(&v, 1);
}

void DnsWriter::u16(std::uint16_t v) noexcept {
  std::uint8_t b[2];
  put16(b, v);
  raw(b, 2);
}

void DnsWriter::u32(std::uint32_t v) noexcept {
  std::uint8_t b[4];
  put32(b, v);
  raw(b, 4);
}

void DnsWriter::raw(const std::uint8_t *p, std::size_t n) noexcept {
  if (!ok_ || n > capacity_ - length_) {
    ok_ = false;
    return;
  }
  std::memcpy(out_ + length_, p, n);
  length_ += n;
}

void DnsWriter::header(std::uint16_t id, std::uint16_t flags) noexcept {
  u16(id);
  u16(flags);
  for (int i = 0; i < 4; ++i) {
    u16(0); // counts, patched by finish()
  }
}

void DnsWriter::name(std::string_view n) noexcept {
  if (!n.empty() && n.back() == '.') {
    n.remove_suffix(1);
  }
  while (!n.empty()) {
    for (std::size_t i = 0; i < suffix_count_; ++i) {
      if (suffixes_[i].text == n) {
        u16(static_cast<std::uint16_t>(0xC000U | suffixes_[i].offset));
        return;
      }
    }
    if (length_ < 0x3FFF && suffix_count_ < suffixes_.size()) {
      suffixes_[suffix_count_++] = {static_cast<std::uint16_t>(length_), n};
    }
    const auto dot = n.find('.');
    const auto label = n.substr(0, dot);
    u8(static_cast<std::uint8_t>(label.size() & 0x3FU));
    raw(reinterpret_cast<const std::uint8_t *>(label.data()), label.size() & 0x3FU);
    n = dot == std::string_view::npos ? std::string_view{} : n.substr(dot + 1);
  }
  u8(0);
}

void DnsWriter::question(std::string_view n, std::uint16_t type) noexcept {
  name(n);
  u16(type);
  u16(1); // IN
  ++counts_[0];
}

void DnsWriter::record_head(DnsSection section, std::string_view owner, std::uint16_t type,
                            std::uint16_t klass, std::uint32_t ttl) noexcept {
  name(owner);
  u16(type);
  u16(klass);
  u32(ttl);
  ++counts_[static_cast<std::size_t>(section)];
}

void DnsWriter::address_record(DnsSection section, std::string_view owner, const IpAddress &address,
                               std::uint32_t ttl) noexcept {
  record_head(section, owner, address.family == 6 ? kDnsAaaa : kDnsA, 1, ttl);
  u16(static_cast<std::uint16_t>(address.length()));
  raw(address.bytes.data(), address.length());
}

void DnsWriter::name_record(DnsSection section, std::string_view owner, std::uint16_t type,
                            std::uint32_t ttl, std::string_view target) noexcept {
  record_head(section, owner, type, 1, ttl);
  const std::size_t rdlength_at = length_;
  u16(0);
  name(target);
  if (ok_) {
    put16(out_ + rdlength_at, static_cast<std::uint16_t>(length_ - rdlength_at - 2));
  }
}

void DnsWriter::soa_record(DnsSection section, std::string_view owner, std::string_view mname,
                           std::string_view rname, std::uint32_t serial,
                           std::uint32_t ttl) noexcept {
  record_head(section, owner, kDnsSoa, 1, ttl);
  const std::size_t rdlength_at = length_;
  u16(0);
  name(mname);
  name(rname);
  u32(serial);
  u32(7200);  // refresh
  u32(3600);  // retry
  u32(86400); // expire
  u32(ttl);   // minimum (negative-caching TTL)
  if (ok_) {
    put16(out_ + rdlength_at, static_cast<std::uint16_t>(length_ - rdlength_at - 2));
  }
}

void DnsWriter::opt_record(std::uint16_t udp_size) noexcept {
  u8(0); // root
  u16(kDnsOpt);
  u16(udp_size);
  u32(0); // extended RCODE, version, flags
  u16(0); // no options
  ++counts_[3];
}

std::size_t DnsWriter::finish() noexcept {
  if (!ok_ || length_ < 12) {
    return 0;
  }
  for (std::size_t i = 0; i < 4; ++i) {
    put16(out_ + 4 + 2 * i, counts_[i]);
  }
  return length_;
}

} // namespace ta::generate::detail
