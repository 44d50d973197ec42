// DNS message parsing (RFC 1035 §4.1). Wire layout walked here:
//
//   +---------------------+
//   |        Header       |  12 octets: ID, flags, QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT
//   +---------------------+
//   |       Question      |  QDCOUNT x { QNAME, QTYPE(16), QCLASS(16) }
//   +---------------------+
//   |        Answer       |  ANCOUNT x RR
//   +---------------------+
//   |      Authority      |  NSCOUNT x RR
//   +---------------------+
//   |      Additional     |  ARCOUNT x RR
//   +---------------------+
//
//   RR = NAME, TYPE(16), CLASS(16), TTL(32), RDLENGTH(16), RDATA(RDLENGTH)
//
// Header flags word (RFC 1035 §4.1.1):
//   |QR|   Opcode  |AA|TC|RD|RA|   Z    |   RCODE   |
//    15  14 .. 11   10  9  8  7  6 .. 4   3 .. 0
//
// Every section is walked even though only the question and the answers are
// used: a message damaged anywhere is rejected whole
// (README "What is counted").
#include "ta/dns/message.hpp"

namespace ta::dns {
namespace {

constexpr std::uint16_t kTypeA = 1;
constexpr std::uint16_t kTypeCname = 5;
constexpr std::uint16_t kTypeAaaa = 28;
constexpr std::uint16_t kClassIn = 1;
// mDNS (RFC 6762 §10.2) uses the top bit of CLASS as the cache-flush flag in
// responses; the class proper is the low 15 bits.
constexpr std::uint16_t kClassMask = 0x7FFF;

constexpr std::size_t kHeaderSize = 12;
constexpr std::size_t kMaxWireName = 255; // RFC 1035 §3.1, length octets included
// Pointers must point strictly backwards, so a chain of pure pointers ends on
// its own; labels between pointers can still revisit bytes, which the length
// limit catches. The hop cap bounds the work per name regardless.
constexpr unsigned kMaxPointerHops = 128;

constexpr std::uint16_t kFlagQr = 0x8000;
constexpr std::uint16_t kFlagTc = 0x0200;
constexpr std::uint16_t kRcodeMask = 0x000F;

// Where a decoded name goes; `buf == nullptr` only validates.
struct NameOut {
  char *buf = nullptr;
  std::uint16_t *len = nullptr;
};

// Reads a domain name at `c`'s position (RFC 1035 §4.1.4 compression):
//   label:   0b00LLLLLL followed by L octets (L = 0 ends the name)
//   pointer: 0b11PPPPPP PPPPPPPP, P = offset from the start of the message
//   0b01xxxxxx / 0b10xxxxxx: extended / reserved label types -> bad_name
// On success `c` is left after the name's own encoding (after the first
// pointer, if any); on failure `c` is unspecified (the whole parse fails).
// `truncated` is the error to report when the name runs off the message.
DnsError read_name(ByteCursor &c, DnsError truncated, NameOut out) noexcept {
  ByteCursor walk(c.whole());
  if (!walk.seek(c.offset())) {
    return truncated;
  }
  std::size_t resume = 0; // 0: no pointer followed yet (no name starts at offset 0)
  std::size_t wire = 0;   // wire length of the uncompressed name, root octet excluded
  unsigned hops = 0;
  std::uint16_t text_len = 0;
  for (;;) {
    const std::size_t label_at = walk.offset();
    std::uint8_t len = 0;
    if (!walk.read_u8(len)) {
      return truncated;
    }
    if ((len & 0xC0U) == 0xC0U) {
      std::uint8_t low = 0;
      if (!walk.read_u8(low)) {
        return truncated;
      }
      const std::size_t target = (std::size_t{len & 0x3FU} << 8U) | low;
      if (target >= label_at || ++hops > kMaxPointerHops) {
        return DnsError::pointer_loop;
      }
      if (resume == 0) {
        resume = walk.offset();
      }
      if (!walk.seek(target)) {
        return truncated; // unreachable: target < label_at <= size
      }
      continue;
    }
    if ((len & 0xC0U) != 0) {
      return DnsError::bad_name;
    }
    if (len == 0) {
      break;
    }
    wire += 1U + len;
    if (wire + 1U > kMaxWireName) {
      return DnsError::name_too_long;
    }
    Bytes label;
    if (!walk.take(len, label)) {
      return truncated;
    }
    if (out.buf != nullptr) {
      // wire <= 254 here, so the text (labels plus dots) is at most 253 chars.
      if (text_len != 0) {
        out.buf[text_len++] = '.';
      }
      for (const std::byte b : label) {
        auto ch = static_cast<char>(b);
        if (ch >= 'A' && ch <= 'Z') {
          ch = static_cast<char>(ch - 'A' + 'a');
        }
        out.buf[text_len++] = ch;
      }
    }
  }
  if (out.buf != nullptr) {
    out.buf[text_len] = '\0';
    *out.len = text_len;
  }
  if (!c.seek(resume != 0 ? resume : walk.offset())) {
    return truncated; // unreachable
  }
  return DnsError::ok;
}

struct RrHeader {
  std::uint16_t type = 0;
  std::uint16_t klass = 0;
  Bytes rdata;
  std::size_t rdata_at = 0; // offset of RDATA in the message
};

// Reads one RR (owner name, fixed fields, RDATA kept as a span).
DnsError read_rr(ByteCursor &c, RrHeader &rr) noexcept {
  if (const DnsError e = read_name(c, DnsError::truncated_record, {}); e != DnsError::ok) {
    return e;
  }
  std::uint32_t ttl = 0;
  std::uint16_t rdlength = 0;
  if (!c.read_u16(rr.type) || !c.read_u16(rr.klass) || !c.read_u32(ttl) || !c.read_u16(rdlength)) {
    return DnsError::truncated_record;
  }
  rr.rdata_at = c.offset();
  if (!c.take(rdlength, rr.rdata)) {
    return DnsError::truncated_record;
  }
  return DnsError::ok;
}

// CNAME RDATA (RFC 1035 §3.3.1) is one domain name, possibly compressed, that
// must end exactly where RDLENGTH says.
DnsError check_cname_rdata(Bytes message, const RrHeader &rr) noexcept {
  ByteCursor c(message);
  if (!c.seek(rr.rdata_at)) {
    return DnsError::truncated_record; // unreachable
  }
  if (const DnsError e = read_name(c, DnsError::truncated_record, {}); e != DnsError::ok) {
    return e;
  }
  return c.offset() == rr.rdata_at + rr.rdata.size() ? DnsError::ok : DnsError::bad_rdata_length;
}

DnsError collect_answer(Bytes message, const RrHeader &rr, DnsResponse &out) noexcept {
  const auto klass = static_cast<std::uint16_t>(rr.klass & kClassMask);
  if (rr.type == kTypeCname) {
    if (const DnsError e = check_cname_rdata(message, rr); e != DnsError::ok) {
      return e;
    }
    ++out.cname_count;
    return DnsError::ok;
  }
  // A and AAAA RDATA layouts are defined for class IN only (RFC 1035 §3.4.1,
  // RFC 3596 §2.2); other classes' records are skipped unread.
  if (klass != kClassIn || (rr.type != kTypeA && rr.type != kTypeAaaa)) {
    return DnsError::ok;
  }
  const std::size_t want = rr.type == kTypeA ? 4 : 16;
  if (rr.rdata.size() != want) {
    return DnsError::bad_rdata_length;
  }
  if (out.address_count >= DnsResponse::kMaxAddresses) {
    return DnsError::too_many_answers;
  }
  out.addresses[out.address_count++] =
      rr.type == kTypeA ? IpAddress::v4(rr.rdata.data()) : IpAddress::v6(rr.rdata.data());
  return DnsError::ok;
}

} // namespace

std::string_view to_string(DnsError e) noexcept {
  switch (e) {
  case DnsError::ok:
    return "ok";
  case DnsError::truncated_header:
    return "truncated_header";
  case DnsError::not_a_response:
    return "not_a_response";
  case DnsError::truncated_question:
    return "truncated_question";
  case DnsError::truncated_record:
    return "truncated_record";
  case DnsError::bad_name:
    return "bad_name";
  case DnsError::name_too_long:
    return "name_too_long";
  case DnsError::pointer_loop:
    return "pointer_loop";
  case DnsError::bad_rdata_length:
    return "bad_rdata_length";
  case DnsError::no_question:
    return "no_question";
  case DnsError::too_many_answers:
    return "too_many_answers";
  case DnsError::count_:
    break;
  }
  return "unknown";
}

DnsError parse_response(Bytes message, DnsResponse &out) noexcept {
  // Reset only what a parse reads back; the big arrays are overwritten up to
  // the counts, which start at zero.
  out.id = 0;
  out.rcode = 0;
  out.truncated_flag = false;
  out.qname_buf[0] = '\0';
  out.qname_len = 0;
  out.address_count = 0;
  out.answer_count = 0;
  out.cname_count = 0;

  ByteCursor c(message);
  std::uint16_t id = 0;
  std::uint16_t flags = 0;
  std::uint16_t qdcount = 0;
  std::uint16_t ancount = 0;
  std::uint16_t nscount = 0;
  std::uint16_t arcount = 0;
  if (message.size() < kHeaderSize || !c.read_u16(id) || !c.read_u16(flags) ||
      !c.read_u16(qdcount) || !c.read_u16(ancount) || !c.read_u16(nscount) ||
      !c.read_u16(arcount)) {
    return DnsError::truncated_header;
  }
  out.id = id;
  out.rcode = static_cast<std::uint8_t>(flags & kRcodeMask);
  out.truncated_flag = (flags & kFlagTc) != 0;
  out.answer_count = ancount;
  if ((flags & kFlagQr) == 0) {
    return DnsError::not_a_response;
  }
  if (qdcount == 0) {
    return DnsError::no_question;
  }

  for (std::uint16_t i = 0; i < qdcount; ++i) {
    const NameOut name_out = i == 0 ? NameOut{out.qname_buf.data(), &out.qname_len} : NameOut{};
    if (const DnsError e = read_name(c, DnsError::truncated_question, name_out);
        e != DnsError::ok) {
      return e;
    }
    std::uint16_t qtype = 0;
    std::uint16_t qclass = 0;
    if (!c.read_u16(qtype) || !c.read_u16(qclass)) {
      return DnsError::truncated_question;
    }
  }

  RrHeader rr;
  for (std::uint16_t i = 0; i < ancount; ++i) {
    if (DnsError e = read_rr(c, rr); e != DnsError::ok) {
      return e;
    }
    if (DnsError e = collect_answer(message, rr, out); e != DnsError::ok) {
      return e;
    }
  }
  // Authority and additional RRs (NS, SOA, glue, OPT, ...) teach nothing, but
  // must still be well-formed: their owner names are checked and their RDATA
  // must fit. RDATA contents are not interpreted.
  const std::uint32_t rest = std::uint32_t{nscount} + arcount;
  for (std::uint32_t i = 0; i < rest; ++i) {
    if (DnsError e = read_rr(c, rr); e != DnsError::ok) {
      return e;
    }
  }
  // Bytes after the last counted RR are ignored (some stacks pad).
  return DnsError::ok;
}

} // namespace ta::dns
