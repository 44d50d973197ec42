// Test helpers of the tls unit tests: hex fixtures of real ClientHellos (each
// comment names the capture, the frame and the tshark field its expected
// name comes from), hex decoding, and a small ClientHello builder for the
// hostile cases no capture holds.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ta/common/byte_cursor.hpp"
#include "ta/testing/bytes.hpp"

namespace ta::tls::test {

using Buf = std::vector<std::byte>;

using ta::testing::bytes;
using ta::testing::hex;
using ta::testing::text;

// A record's payload: the bytes after the 5-byte record header.
inline Buf strip_record(const Buf &record) {
  return {record.begin() + 5, record.end()};
}

inline void put_u8(Buf &b, std::size_t v) {
  b.push_back(static_cast<std::byte>(v & 0xFFU));
}
inline void put_u16(Buf &b, std::size_t v) {
  put_u8(b, v >> 8U);
  put_u8(b, v);
}
inline void put_u24(Buf &b, std::size_t v) {
  put_u8(b, v >> 16U);
  put_u16(b, v);
}
inline void append(Buf &b, const Buf &more) {
  b.insert(b.end(), more.begin(), more.end());
}

// Extension: uint16 type, uint16 length, data.
inline Buf extension(std::size_t type, const Buf &data) {
  Buf b;
  put_u16(b, type);
  put_u16(b, data.size());
  append(b, data);
  return b;
}

// server_name extension data (RFC 6066 §3) from (name_type, name) entries.
inline Buf server_name_data(const std::vector<std::pair<std::uint8_t, std::string>> &entries) {
  Buf list;
  for (const auto &[type, name] : entries) {
    put_u8(list, type);
    put_u16(list, name.size());
    append(list, bytes(name));
  }
  Buf data;
  put_u16(data, list.size());
  append(data, list);
  return data;
}

inline Buf sni_extension(const std::string &name) {
  return extension(0, server_name_data({{0, name}}));
}

// A ClientHello handshake message: TLS 1.3 layout, 32-byte session id, one
// cipher suite, null compression, then `exts` (each a whole Extension). With
// `with_extensions` false the extensions block is left out entirely.
inline Buf client_hello(const std::vector<Buf> &exts, bool with_extensions = true) {
  Buf body;
  put_u16(body, 0x0303);
  body.insert(body.end(), 32, std::byte{0x11}); // random
  put_u8(body, 32);
  body.insert(body.end(), 32, std::byte{0x22}); // legacy_session_id
  put_u16(body, 2);
  put_u16(body, 0x1301); // TLS_AES_128_GCM_SHA256
  put_u8(body, 1);
  put_u8(body, 0); // null compression
  if (with_extensions) {
    Buf all;
    for (const Buf &e : exts) {
      append(all, e);
    }
    put_u16(body, all.size());
    append(body, all);
  }
  Buf msg;
  put_u8(msg, 1);
  put_u24(msg, body.size());
  append(msg, body);
  return msg;
}

// Offsets into a client_hello() message, for tests that make lengths lie.
inline constexpr std::size_t kSessionIdLenAt = 4 + 2 + 32;
inline constexpr std::size_t kSuitesLenAt = kSessionIdLenAt + 1 + 32;
inline constexpr std::size_t kCompLenAt = kSuitesLenAt + 2 + 2;
inline constexpr std::size_t kExtsLenAt = kCompLenAt + 1 + 1;
inline constexpr std::size_t kFirstExtAt = kExtsLenAt + 2;

// Wraps a handshake byte stream into handshake records whose fragments are
// at most `fragment` bytes (record version 0x0301, as first flights use).
inline Buf records(const Buf &handshake, std::size_t fragment) {
  Buf out;
  for (std::size_t i = 0; i < handshake.size(); i += fragment) {
    const std::size_t n = std::min(fragment, handshake.size() - i);
    put_u8(out, 22);
    put_u16(out, 0x0301);
    put_u16(out, n);
    out.insert(out.end(), handshake.begin() + static_cast<std::ptrdiff_t>(i),
               handshake.begin() + static_cast<std::ptrdiff_t>(i + n));
  }
  return out;
}

// ndpi_chrome.pcap frame 4 (tcp.payload, 517 bytes: one record, one ClientHello with
// GREASE extensions). tls.handshake.extensions_server_name: www.iit.cnr.it
inline constexpr std::string_view kChromeRecord =
    "1603010200010001fc0303d77aa0f252cff8ff81a9c82edc42621f8c80d83b0322361c96ae2f2bda7849ce207094"
    "dfde2fae965e90337a4b4c5c840b86caabaca5ab87a6e290440145ae762900209a9a130313011302cca9cca8c02b"
    "c02fc02cc030c013c014009c009d002f0035010001934a4a000000000013001100000e7777772e6969742e636e72"
    "2e697400170000ff01000100000a000a00086a6a001d00170018000b00020100002300000010000e000c02683208"
    "687474702f312e31000500050100000000000d001200100403080404010503080505010806060100120000003300"
    "2b00296a6a000100001d00203af18d95cb86205f04c0a3e2b8c68b9026c6a90ef630fe20a68d31ea2525b648002d"
    "00020101002b000b0a6a6a0304030303020301001b00030200024469000500030268326a6a000100001500c50000"
    "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000";

// ndpi_chrome.pcap frame 24 (tcp.payload, 635 bytes; padding and pre_shared_key
// extensions). tls.handshake.extensions_server_name: www.iit.cnr.it
inline constexpr std::string_view kChromePaddedRecord =
    "160301027601000272030302aad935c201779a61c55d1788fc836aa2fb425a52d0e942f45e30e5f538414f204512"
    "8499a158206eccf6192c7fdb1aa59ed7af3c698242cc04ff2ed5afca73b30020fafa130313011302cca9cca8c02b"
    "c02fc02cc030c013c014009c009d002f0035010002095a5a000000000013001100000e7777772e6969742e636e72"
    "2e697400170000ff01000100000a000a00085a5a001d00170018000b00020100002300000010000e000c02683208"
    "687474702f312e31000500050100000000000d001200100403080404010503080505010806060100120000003300"
    "2b00295a5a000100001d0020131377b7385b2b5ecd06bd3e5c7ae3fda6440783ee0dc476ad3544d1b979ff2d002d"
    "00020101002b000b0a8a8a0304030303020301001b00030200024469000500030268324a4a0001000029013b0106"
    "0100332a7372a0335ac04064835c831fb28019e0065228c866f002680b0d0a65e6d91cc12939086f8f9287d81b70"
    "51fbeff4e5444b0a640620dd08419df062f64320f40c693e57578be037fa74f17ed7c26f1d007b412367e15eddbc"
    "147631b1bf5726afbc84e9b9b174972c63ba1b2971627ca121f87f385d26da92b6d1cd04b6d686f97df1a2925887"
    "2b0f2e8bc0c5dab938be46783a96d1f40480a58ddb8daeaa89c505bc673beaaad892c578632e1bc6afe8304cf90a"
    "3f3d34bbad3862e3fc0dfa1830b5d7667074ed07361180c099132748ff8f002578fe06fbc1d0fe2a82d34bbf6b6d"
    "945fe03bec39bfdaeea762c01be4c912ca0640ba65534b745015d931829e46690031306de96aa2b4c8214460e1d6"
    "f30f861da7e31c2e881d5441094276181c23b3b05ac98c7566811ce47a0c0948130c7d47ca";

// ndpi_tls_esni_sni_both.pcap frame 4 (tcp.payload, 634 bytes; server_name next to an
// encrypted_server_name extension 0xffce). tls.handshake.extensions_server_name:
// these-are-not-the-droids-youre-looking-for.com
inline constexpr std::string_view kEsniRecord1 =
    "160301027501000271030306a564656b2876dad16d5c40339a325ebc316cd485aa0b8bb66d76f1c0813af710b70b"
    "63dd114e5411e6452f0a0f97560000061303130113020100023200000033003100002e74686573652d6172652d6e"
    "6f742d7468652d64726f6964732d796f7572652d6c6f6f6b696e672d666f722e636f6dffce016e1301001d0020db"
    "3df8309b60ee5190359d24f44d36d9725df0f96fd4c4af8a78d4d0f17668580020bf707e086a555f3e660ec52dac"
    "0bcbe8bb5c597b5c923f26d33c6e9125c6b9bc0124b8845d1a37225d055cb7187b6d7cbd852adfda5269097680cb"
    "388af4fc9f5c7bce03772d5259820afc2da5c949a663f997d270bbd2525d0d7c4d83e6fa9cfa038c1e78c2c847bb"
    "2033853998e7d391737c1cbb3796a9f7f24d5e88f6c5af94e95d93c2f8a168e73f18d090eab69d7c689afa7ad9bc"
    "aafefcf496509dd4dfeb3e96ce334f2b00a6c03c1f9c1bf5040ba031e789d03185ddb6bd2d2105a91463519a23ca"
    "ae0295e3f068b701d99b1ab486583c7254dda07be99d50c23e4681cb62a5faa669adfef76693137788b3c0a5b0ee"
    "c36e004f8a11e7b5b14dd37f50c1f6f20d68828620befb7460a5d6910255c126f921fe6b70f2e9c7299683fae6f9"
    "d068b139bad1ef709da821642b00fa7fd1bba44ef6c3dac61043c434224f3e570f62daa4bf000500050100000000"
    "000a000a0008001d001700180019000b00020100000d001800160804040104030805050105030806060106030201"
    "020300320012001004010403050105030601060302010203ff0100010000120000003300260024001d0020ac17ad"
    "824f38f7a764641fd5ad82cfc6ba50c2e705867dc469f26bf78cc27833002b0003020304";

// ndpi_tls_esni_sni_both.pcap frame 24 (tcp.payload, 639 bytes).
// tls.handshake.extensions_server_name: you-think-thats-normal-tls-traffic-youre-seeing.com
inline constexpr std::string_view kEsniRecord2 =
    "160301027a0100027603035d24d17245e562ad1495a23b9f9c631b78b0824887dab0cd62796e051bca1fde103033"
    "89bc6f4d10f6857e1dced3e6830b000613031301130201000237000000380036000033796f752d7468696e6b2d74"
    "686174732d6e6f726d616c2d746c732d747261666669632d796f7572652d736565696e672e636f6dffce016e1301"
    "001d002099d5a63365eba30e5e9be6c78d605106987a25fb67a870ec1c24516cd1186a4e0020bf707e086a555f3e"
    "660ec52dac0bcbe8bb5c597b5c923f26d33c6e9125c6b9bc01244b80f11c3e3e40385229d888f5db7398460e5ff5"
    "ec9e03e8331810bcd314c33227b55f4f0dadd4b813c9274b884abdc0d2434429ebb559832a5d54b5d55b138366bd"
    "a28ff8de68a292825ca14522cb5fb23a04cc654e9c6d9c5b967b20520d7fc4efec9d04154a40428dd4fb89742afb"
    "aadd01105020f05b23c44f216802fda5f9cdfbd129baa1cca4a4235e9f1e9d16a96fe72cef01aca433c697dd49d2"
    "389e1aaf817f54e971e4f290de91ecb83a5876a3b37b97e66ebcbb90aefe3bf39455ba2aecb7b4161d157606bcbe"
    "1e4d0c0391d57652585a1e6c49290f4d40fd6de2eeba63f76d6d7d924134335ba9ebe813a4197daac8ef6603a8b6"
    "c71aaf6a6faad92b1345df53a2943845a7ab6a09cfc3783c8fbc72ad48b2ed5c04924e9dfbf57ebcdebf00050005"
    "0100000000000a000a0008001d001700180019000b00020100000d00180016080404010403080505010503080606"
    "0106030201020300320012001004010403050105030601060302010203ff0100010000120000003300260024001d"
    "0020c8d8b8b9abfd24cb96ff4421c1ace3f5b2748519a87cffed46f825279b772770002b0003020304";

// sv_ja4-tls-quic.pcap frame 4 (tcp.payload, 517 bytes).
// tls.handshake.extensions_server_name: cloudflare-quic.com
inline constexpr std::string_view kJa4TcpRecord =
    "1603010200010001fc0303a8ba73151e99d1a071af2e07e67c8b38f14914d8757d56f0f1d85a5a3372f74120c08e"
    "b52a78fdabf9d36b2bc688a1d2024ac9d39c07fe8d2f8190fe1ca00232640020baba130113021303c02bc02fc02c"
    "c030cca9cca8c013c014009c009d002f0035010001930a0a0000000000180016000013636c6f7564666c6172652d"
    "717569632e636f6d00170000ff01000100000a000a0008eaea001d00170018000b00020100002300000010000e00"
    "0c02683208687474702f312e31000500050100000000000d00120010040308040401050308050501080606010012"
    "00000033002b0029eaea000100001d002065f7b9167d2fb3022d176527bb5b9649296ce07a0fae416fc279d07897"
    "47ca10002d00020101002b0007063a3a03040303001b00030200024469000500030268328a8a000100001500c400"
    "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000";

// sv_ja4-tls-quic.pcap frame 47: the QUIC v1 Initial's CRYPTO frames as tshark joins
// them ("Reassembled QUIC CRYPTO", 300 bytes): a bare handshake message, no record
// layer. tls.handshake.extensions_server_name: cloudflare-quic.com
inline constexpr std::string_view kJa4QuicClientHello =
    "01000128030348a7bc208b4c86b5cdfa3603fed142fa289feff252cd47c5275d5fa994fc52a20000061301130213"
    "03010000f9001000050003026833000000180016000013636c6f7564666c6172652d717569632e636f6d002d0002"
    "0101001b0003020002000a00080006001d00170018003300260024001d0020cf1816e2b1bcbac697d8c7dcb0063c"
    "e2200816ad495b86ab70d5895973fa1e08002b0003020304003900650604806000000f00200480010000fcc15de5"
    "4862727409f0438f088c0f18e73c7128045256434d040480f000000704806000000802406480ff73db0c00000001"
    "da0a3a3a0000000101048000753009024067050480600000800047520400000001030245c0446900050003026833"
    "000d00140012040308040401050308050501080606010201";

} // namespace ta::tls::test
