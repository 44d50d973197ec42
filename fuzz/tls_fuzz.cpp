// libFuzzer target for the tls stage:
//   1. the input as a client's first TCP bytes, fed to a ClientHelloAssembler
//      in two pieces split at an offset chosen by the input's last two bytes,
//      and to a fresh assembler in one piece;
//   2. the input, and the input minus a 5-byte record header, as one bare
//      handshake message -> parse_client_hello (the QUIC path).
// Checked invariants (abort on violation): where the input is split changes
// neither the state nor the name; a name is non-empty and lies inside the
// bytes it was parsed from; parse_client_hello never reports a record-layer
// status; names and states have their stable names.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "ta/common/hostname.hpp"
#include "ta/tls/tls.hpp"

namespace {

using ta::Bytes;
using ta::tls::AssemblerState;
using ta::tls::ClientHelloAssembler;
using ta::tls::ClientHelloResult;
using ta::tls::ClientHelloStatus;

void check(bool ok) {
  if (!ok) {
    std::abort();
  }
}

bool inside(Bytes part, Bytes whole) {
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

void check_result(const ClientHelloResult &r, Bytes from) {
  check(r.status < ClientHelloStatus::count_);
  check(ta::tls::client_hello_status_name(r.status) != "unknown");
  if (r.status == ClientHelloStatus::ok) {
    check(r.sni_is_present());
    check(!r.server_name.empty() && inside(r.server_name, from));
    std::string name;
    ta::normalize_hostname(r.server_name, name);
    check(name.size() + 1 >= r.server_name.size());
  } else {
    check(!r.sni_is_present() && r.server_name.empty());
  }
}

void check_bare(Bytes msg) {
  const ClientHelloResult r = ta::tls::parse_client_hello(msg);
  check_result(r, msg);
  check(r.status != ClientHelloStatus::not_tls && r.status != ClientHelloStatus::bad_record);
  if (r.status == ClientHelloStatus::ok) {
    // The name came from the first message, which fits the bound.
    check(r.server_name.data() + r.server_name.size() <=
          msg.data() + ta::tls::kMaxHandshakeMessage);
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  const Bytes in(reinterpret_cast<const std::byte *>(data), size);

  static ClientHelloAssembler whole;
  static ClientHelloAssembler split;
  whole.reset();
  split.reset();
  std::size_t cut = 0;
  if (size >= 2) {
    cut = ((std::size_t{data[size - 2]} << 8U) | data[size - 1]) % (size + 1);
  }
  const AssemblerState w = whole.feed(in);
  split.feed(in.first(cut));
  const AssemblerState s = split.feed(in.subspan(cut));
  check(w < AssemblerState::count_);
  check(ta::tls::assembler_state_name(w) != "unknown");
  check(w == s);
  check(whole.message().size() <= ta::tls::kMaxHandshakeMessage);
  const ClientHelloResult rw = whole.result();
  const ClientHelloResult rs = split.result();
  check_result(rw, whole.message());
  check_result(rs, split.message());
  check(rw.status == rs.status);
  check(rw.server_name.size() == rs.server_name.size());
  for (std::size_t i = 0; i < rw.server_name.size(); ++i) {
    check(rw.server_name[i] == rs.server_name[i]);
  }
  if (w == AssemblerState::done) {
    check(rw.status != ClientHelloStatus::need_more && rw.status != ClientHelloStatus::too_large);
  }

  check_bare(in);
  if (size > 5) {
    check_bare(in.subspan(5));
  }
  return 0;
}
